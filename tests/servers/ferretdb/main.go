// Command ferretdb-test runs FerretDB v1.24.2, embedded as a library, as the MongoDB-protocol server of the test
// suite: the SQLite handler in a directory of the caller's, on a loopback port (0: any free one).
//
// It prints one line "ready mongodb://127.0.0.1:PORT/" on standard output once it accepts connections, and stops
// when it gets SIGTERM or SIGINT, or when its standard input reaches end-of-file (its parent is gone).
//
//	go build -o ferretdb-test . && ./ferretdb-test -dir /tmp/x -listen 127.0.0.1:0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	dir := flag.String("dir", "", "directory for the SQLite databases (created if missing)")
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	level := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb-test: -dir is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o700)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test:", err)
		os.Exit(1)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test: -log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	go func() { // the parent holds our stdin: end-of-file means it is gone
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	done := make(chan struct{})
	go func() {
		_ = f.Run(ctx)
		close(done)
	}()
	fmt.Printf("ready %s\n", f.MongoDBURI())
	<-done
}
