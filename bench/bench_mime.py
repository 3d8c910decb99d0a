#!/usr/bin/env python3
"""MIME micro benchmark (no sockets): parse + split for storage, Cython scanner vs pure Python, and recomposition.

    python bench/bench_mime.py [--quick]

Workload: the 48 messages of tests/data/imaptest.mbox plus a 50 KB message with a 30 KB attachment, repeated
to about 4 MB (1 MB with --quick). Each figure is the best of several rounds; ratios are against the pure-Python
scanner measured in the same run.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.corpus import corpus, crlf  # noqa: E402
from wildduck._speedups import implementations  # noqa: E402
from wildduck.protocols import mime  # noqa: E402


def sample_50k() -> bytes:
    text = b"".join(b"Line %05d of a realistic mail body, with some words in it.\r\n" % i for i in range(260))
    att = base64.encodebytes(os.urandom(30_000)).replace(b"\n", b"\r\n")
    return (b"From: a@example.net\r\nTo: b@example.com\r\nSubject: bench\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + text + b"--BB\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + att + b"--BB--\r\n")


def best(fn: Callable[[], None], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    target = (1 if args.quick else 4) * 1024 * 1024
    rounds = 2 if args.quick else 5
    base = [crlf(m) for m in corpus()] + [sample_50k()]
    workload: list[bytes] = []
    while sum(map(len, workload)) < target:
        workload.extend(base)
    total = sum(map(len, workload))
    impls = implementations("mimescan")
    print(f"workload: {len(workload)} messages, {total / 1e6:.2f} MB; implementations: {', '.join(impls)}")

    results: dict[str, float] = {}
    for name, scanner in impls.items():
        def run(scanner=scanner) -> None:  # type: ignore[no-untyped-def]
            for raw in workload:
                mime.analyze(raw, scanner_module=scanner)

        results[name] = best(run, rounds)

    def scan_only(scanner) -> Callable[[], None]:  # type: ignore[no-untyped-def]
        from wildduck.protocols.mime import tree

        def run() -> None:
            for raw in workload:
                tree.build(raw, scanner)
        return run

    scan_results = {name: best(scan_only(scanner), rounds) for name, scanner in impls.items()}

    analyses = [mime.analyze(raw) for raw in workload]

    def compose_all() -> None:
        for a in analyses:
            mime.compose(a.skeleton, a.parts, a.blobs)

    compose_time = best(compose_all, rounds)

    # the compose speedups on the bytes RETR and FETCH BODY[] produce: re-encoding the stored (decoded) base64
    # attachments, and the dot-stuffing scan over the recomposed messages
    decoded = [blob for a in analyses for p in a.parts if p.encoding.get("kind") == "base64"
               for blob in [a.blobs[p.blob]]]
    encoded_bytes = sum(len(mime.materialize(d, {"kind": "base64", "line": 76, "nl": "\r\n", "final_nl": True}))
                        for d in decoded)
    composed = [mime.compose(a.skeleton, a.parts, a.blobs) for a in analyses]
    compose_impls = implementations("compose")
    b64_results: dict[str, float] = {}
    stuff_results: dict[str, float] = {}
    for name, mod in compose_impls.items():
        def encode_all(mod=mod) -> None:  # type: ignore[no-untyped-def]
            for d in decoded:
                mod.encode_base64(d, 76, b"\r\n", True)

        def stuff_all(mod=mod) -> None:  # type: ignore[no-untyped-def]
            for m in composed:
                mod.stuff_dots(m)

        b64_results[name] = best(encode_all, rounds)
        stuff_results[name] = best(stuff_all, rounds)

    base_time = results["python"]
    print(f"{'measurement':44} {'msgs/s':>10} {'MB/s':>8} {'ratio':>7}")
    for name, t in results.items():
        print(f"{'analyze (parse+split+structures), ' + name:44} {len(workload) / t:10.0f} {total / t / 1e6:8.2f} "
              f"{base_time / t:6.2f}x")
    scan_base = scan_results["python"]
    for name, t in scan_results.items():
        print(f"{'tree only (scanner+headers), ' + name:44} {len(workload) / t:10.0f} {total / t / 1e6:8.2f} "
              f"{scan_base / t:6.2f}x")
    print(f"{'compose (recomposition)':44} {len(workload) / compose_time:10.0f} {total / compose_time / 1e6:8.2f} "
          f"{'':>7}")
    for label, timed, size in (("base64 re-encoding (encode_base64), ", b64_results, encoded_bytes),
                               ("dot-stuffing scan (stuff_dots), ", stuff_results, total)):
        for name, t in timed.items():
            print(f"{label + name:44} {'':>10} {size / t / 1e6:8.0f} {timed['python'] / t:6.2f}x")
    raw_bytes = sum(a.size for a in analyses)
    skeleton_bytes = sum(len(a.skeleton) for a in analyses)
    print(f"skeletons are {skeleton_bytes / raw_bytes:.1%} of the raw bytes (the rest goes to the blob store)")


if __name__ == "__main__":
    main()
