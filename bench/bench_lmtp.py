#!/usr/bin/env python3
"""LMTP end to end on loopback: a real ``wildduck serve`` process, concurrent clients, bytes on disk.

    python bench/bench_lmtp.py [--quick] [--clients 10] [--seconds 20]

Each client (a thread with its own connection) sends 50 KB messages carrying a 30 KB attachment as fast as the
server acknowledges them. Two workloads: every message carries the SAME attachment (a newsletter: deduplicated),
or each carries its own random one (compression only). The baseline in the same run is the same server with the
pure-Python speedups (WILDDUCK_NO_EXTENSIONS=1); the ratio is Cython over pure. Clients and server share the
machine's cores, so these are figures for the whole loop, not for the server alone.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wildduck.testing.lmtp_client import LMTPClient  # noqa: E402
from wildduck.testing.server import ServerProcess  # noqa: E402

SHARED_ATTACHMENT = os.urandom(30_000)


def message(n: int, shared: bool) -> bytes:
    text = b"".join(b"Line %05d of message %d: some realistic words in a mail body...\r\n" % (i, n)
                    for i in range(120))
    attachment = SHARED_ATTACHMENT if shared else os.urandom(30_000)
    b64 = base64.encodebytes(attachment).replace(b"\n", b"\r\n")
    return (b"From: bench@example.net\r\nTo: user@example.com\r\nSubject: bench %d\r\n"
            b"Message-ID: <bench-%d@example.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\n" % (n, n)
            + text + b"--BB\r\nContent-Type: application/pdf; name=report.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--BB--\r\n")


def run_server(workdir: Path, env: dict[str, str], clients: int, seconds: float, shared: bool) -> dict[str, float]:
    data_dir = workdir / "data"
    config = workdir / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{data_dir}"\n[lmtp]\nport = 0\n[imap]\nenabled = false\n'
                      f"[limits]\nmax_connections = {clients + 10}\n")
    subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "user", "create", "user",
                    "--password", "pw", "--address", "user@example.com", "--quota", "100G"],
                   check=True, capture_output=True, env={**os.environ, **env})
    messages = [message(i, shared) for i in range(200)] if shared else []
    raw_bytes = 0
    done = 0
    lock = threading.Lock()
    stop = threading.Event()
    with ServerProcess(config, env=env) as server:
        host, port = server.address("lmtp")

        def client(k: int) -> None:
            nonlocal raw_bytes, done
            with LMTPClient(host, port) as c:
                c.lhlo()
                i = k
                while not stop.is_set():
                    msg = messages[i % len(messages)] if shared else message(i, False)
                    _r, replies = c.send_message("bench@example.net", ["user@example.com"], msg)
                    if replies and replies[0][0] == 250:
                        with lock:
                            done += 1
                            raw_bytes += len(msg)
                    i += clients

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    db = data_dir / "wildduck.db"
    wal = data_dir / "wildduck.db-wal"
    disk = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {"msgs": done, "rate": done / elapsed, "mbps": raw_bytes / elapsed / 1e6, "raw": raw_bytes, "disk": disk}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 20.0)
    print(f"{args.clients} clients, {seconds:.0f} s per run, 50 KB messages with a 30 KB attachment")
    print(f"{'run':34} {'msgs':>6} {'msgs/s':>8} {'MB/s':>6} {'disk/msg':>9} {'disk/raw':>9} {'ratio':>6}")
    for shared in (True, False):
        label = "same attachment" if shared else "unique attachments"
        results = {}
        for impl, env in (("pure", {"WILDDUCK_NO_EXTENSIONS": "1"}), ("cython", {})):
            with tempfile.TemporaryDirectory() as tmp:
                results[impl] = r = run_server(Path(tmp), env, args.clients, seconds, shared)
            ratio = r["rate"] / results["pure"]["rate"]
            print(f"{label + ', ' + impl:34} {r['msgs']:6.0f} {r['rate']:8.1f} {r['mbps']:6.2f} "
                  f"{r['disk'] / max(r['msgs'], 1) / 1024:7.1f}KB {r['disk'] / max(r['raw'], 1):9.1%} {ratio:5.2f}x")


if __name__ == "__main__":
    main()
