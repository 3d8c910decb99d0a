"""Fuzz harness for the IMAP receiver and grammar: ``python tests/fuzz/fuzz_imap.py`` under atheris.

Invariant: any bytes, fed whole or split, give only the documented events; parsing raises nothing; the receiver
never holds more than its limits allow.
"""

from __future__ import annotations

import sys

from wildduck._speedups import implementations
from wildduck.protocols.imap import receiver as rx
from wildduck.sessions.imap import registry

LIMITS = {"max_line": 512, "max_literal": 1024, "max_command": 4096, "max_depth": 8, "max_literals": 4}
BOUND = 512 + 1024 + 4096


def _drain(r: rx.Receiver, accept: bool) -> None:
    while True:
        e = r.next_event()
        if e is rx.NEED_DATA or isinstance(e, rx.ConnectionClosed):
            return
        if isinstance(e, rx.LiteralAnnounced):
            if accept:
                r.accept_literal()
            else:
                r.refuse_literal()
        elif isinstance(e, rx.RawCommand):
            registry.parse(e)
        elif not isinstance(e, (rx.CommandRejected, rx.IdleDone, rx.SaslResponse)):
            raise AssertionError(f"unexpected event {e!r}")
        if r.buffered > BOUND + 8192:
            raise AssertionError("receiver holds too much")


def check(data: bytes) -> None:
    for tok in implementations("imaptok").values():
        for split in (len(data) or 1, 7, 1):
            r = rx.Receiver(tokenizer=tok, **LIMITS)  # type: ignore[arg-type]
            for i in range(0, len(data), split):
                r.receive_data(data[i:i + split])
                _drain(r, accept=bool(i % 2))
            r.receive_data(b"")
            _drain(r, accept=True)


def main() -> None:  # pragma: no cover - needs atheris
    import atheris

    atheris.Setup(sys.argv, lambda data: check(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    main()
