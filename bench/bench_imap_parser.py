#!/usr/bin/env python3
"""IMAP micro benchmark (no sockets): the receiver (framing + tokenizer + literals) and FETCH serialization.

    python bench/bench_imap_parser.py [--quick]

The command mix is what a syncing client sends (UID FETCH with sections, STORE, SEARCH, NOOP) plus APPENDs with
synchronizing and non-synchronizing literals. The receiver runs with the Cython tokenizer and with the pure one in
the same process; the ratio is Cython over pure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.corpus import corpus, crlf  # noqa: E402
from wildduck._speedups import implementations  # noqa: E402
from wildduck.protocols import mime  # noqa: E402
from wildduck.protocols.imap import receiver as rx  # noqa: E402
from wildduck.protocols.imap import serializer  # noqa: E402
from wildduck.sessions.imap import registry

MIX = [
    b'a%d UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date '
    b'Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n',
    b"a%d UID STORE 1,5,9:12 +FLAGS.SILENT (\\Seen $Label1)\r\n",
    b'a%d UID SEARCH CHARSET UTF-8 OR (FROM "someone@example.com" UNSEEN) (SUBJECT "quarterly report" SINCE '
    b"1-Jan-2026)\r\n",
    b"a%d NOOP\r\n",
    b"a%d UID FETCH 4711 (BODY.PEEK[1.2.MIME] BODY.PEEK[2]<0.65536> BODYSTRUCTURE ENVELOPE)\r\n",
]


def workload(target: int) -> bytes:
    body = crlf(corpus()[3])
    out = bytearray()
    i = 0
    while len(out) < target:
        out += MIX[i % len(MIX)] % i
        if i % 10 == 0:
            out += b'a%d APPEND INBOX (\\Seen) {%d+}\r\n' % (i, len(body)) + body + b"\r\n"
        i += 1
    return bytes(out)


def best(fn: Callable[[], int], rounds: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(rounds):
        t = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t)
    return min(times), count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    data = workload((1 if args.quick else 4) * 1024 * 1024)
    rounds = 2 if args.quick else 5
    print(f"receiver workload: {len(data) / 1e6:.2f} MB of commands")

    def run(tok: object, parse: bool) -> Callable[[], int]:
        def go() -> int:
            r = rx.Receiver(tokenizer=tok)  # type: ignore[arg-type]
            n = 0
            for i in range(0, len(data), 16384):  # as the bytes arrive from a socket
                r.receive_data(data[i:i + 16384])
                while True:
                    e = r.next_event()
                    if e is rx.NEED_DATA:
                        break
                    if isinstance(e, rx.RawCommand):
                        n += 1
                        if parse:
                            registry.parse(e)
            return n
        return go

    results = {}
    for name, tok in implementations("imaptok").items():
        results[(name, False)] = best(run(tok, False), rounds)
        results[(name, True)] = best(run(tok, True), rounds)
    print(f"{'measurement':46} {'cmds/s':>10} {'MB/s':>8} {'ratio':>7}")
    for parse in (False, True):
        base = results[("python", parse)][0]
        for name in ("python", "cython"):
            if (name, parse) not in results:
                continue
            t, n = results[(name, parse)]
            label = f"receiver{' + grammar' if parse else ''}, {name} tokenizer"
            print(f"{label:46} {n / t:10.0f} {len(data) / t / 1e6:8.2f} {base / t:6.2f}x")

    analyses = [mime.analyze(crlf(m)) for m in corpus()]

    def serialize() -> int:
        total = 0
        for seq, a in enumerate(analyses, 1):
            raw = mime.compose(a.skeleton, a.parts, a.blobs)
            items = [("UID", b"%d" % seq), ("FLAGS", serializer.flag_list(["\\Seen"])),
                     ("ENVELOPE", serializer.data(a.envelope)), ("BODYSTRUCTURE", serializer.data(a.bodystructure)),
                     ("BODY[]", serializer.Streamed(len(raw), [raw]))]
            total += sum(len(c) for c in serializer.iter_fetch(seq, items))
        return total

    reps = 5 if args.quick else 20
    t, size = best(lambda: sum(serialize() for _ in range(reps)), rounds)
    print(f"{'FETCH serialization (ENVELOPE BODYSTRUCTURE BODY[])':46} {len(analyses) * reps / t:10.0f} "
          f"{size / t / 1e6:8.2f}")
    structure_serialization(analyses, rounds, 20 if args.quick else 100)


def structure_serialization(analyses: list[mime.Analysis], rounds: int, reps: int) -> None:
    """ENVELOPE/BODYSTRUCTURE/BODY from the JSON-able data (what every FETCH did before schema v9; now ingest and
    the migration) and the metadata FETCH line from the stored forms (``* n FETCH (UID n ENVELOPE (...) FLAGS
    (...))``), with the pure and the Cython ``imapfmt``; then what a FETCH of one message's ENVELOPE costs each
    way: JSON decoded and rendered (before) or the stored bytes copied into the line (now)."""
    import json

    from wildduck.protocols.mime import imapform

    envelopes = [a.envelope for a in analyses]
    structures = [a.bodystructure for a in analyses]
    forms = [imapform.forms(a.envelope, a.bodystructure) for a in analyses]
    stored_json = [(json.dumps(a.envelope), json.dumps(a.bodystructure)) for a in analyses]
    flags = serializer.flag_list(["\\Seen", "$Label1"])
    words = [w.encode() for env in envelopes for a in env[2:8] if a for w in a[0] if isinstance(w, str)]
    line_items = [[b"UID %d" % seq, b"ENVELOPE", f[0], b"FLAGS", flags] for seq, f in enumerate(forms, 1)]
    saved = imapform._string, imapform._human
    results: dict[tuple[str, str], float] = {}
    try:
        for name, fmt in implementations("imapfmt").items():
            imapform._string, imapform._human = fmt.string, fmt.human_string
            def render() -> int:
                total = 0
                for _ in range(reps):
                    for env, bs in zip(envelopes, structures, strict=True):
                        total += len(imapform.forms(env, bs)[0])
                return total

            def lines(fetch_line: Callable[[int, list[bytes]], bytes] = fmt.fetch_line) -> int:
                total = 0
                for _ in range(reps * 10):
                    for seq, items in enumerate(line_items, 1):
                        total += len(fetch_line(seq, items))
                return total

            # the old FETCH ENVELOPE: decode the stored JSON, render, build the line
            def before(fetch_line: Callable[[int, list[bytes]], bytes] = fmt.fetch_line) -> int:
                total = 0
                for _ in range(reps):
                    for seq, (env, _bs) in enumerate(stored_json, 1):
                        total += len(fetch_line(seq, [b"ENVELOPE", imapform.envelope(json.loads(env))]))
                return total

            results[(name, "render")] = best(render, rounds)[0] / (reps * len(forms))
            results[(name, "line")] = best(lines, rounds)[0] / (reps * 10 * len(forms))
            results[(name, "before")] = best(before, rounds)[0] / (reps * len(forms))
            for kind, fn in (("string", fmt.string), ("human", fmt.human_string)):
                def strings(fn: Callable[[bytes, bool], bytes] = fn) -> int:
                    return sum(len(fn(w, False)) for _ in range(reps) for w in words)
                results[(name, kind)] = best(strings, rounds)[0] / (reps * len(words))
    finally:
        imapform._string, imapform._human = saved
    labels = {"string": "string (address words)", "human": "human_string (the same words)",
              "render": "ENVELOPE+BODYSTRUCTURE+BODY from JSON data", "line": "FETCH line from the stored forms",
              "before": "FETCH ENVELOPE before v9 (json + render)"}
    print(f"\n{'per message (us)':46} {'python':>8} {'cython':>8} {'ratio':>7}")
    for kind, label in labels.items():
        py = results[("python", kind)]
        cy = results.get(("cython", kind))
        print(f"{label:46} {py * 1e6:8.2f} " + (f"{cy * 1e6:8.2f} {py / cy:6.2f}x" if cy else f"{'-':>8}"))
    now = results.get(("cython", "line"), results[("python", "line")])
    print(f"{'FETCH ENVELOPE: before v9 / stored forms':46} {results[('python', 'before')] / now:8.1f}x "
          "(pure before, active build now)")


if __name__ == "__main__":
    main()
