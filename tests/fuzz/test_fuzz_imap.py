"""Runs the IMAP fuzz harness over a seed corpus and bounded random input."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.fuzz_imap import check

SEEDS = [
    b"a1 LOGIN alice pw\r\na2 SELECT INBOX\r\na3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM)]<0.10>)\r\n",
    b"b APPEND INBOX (\\Seen) \" 1-Jan-2026 00:00:00 +0000\" {5}\r\nhello\r\n",
    b"c APPEND INBOX {5+}\r\nhello\r\nd SEARCH OR (FROM \"x\" UNSEEN) NOT 1:3\r\n",
    b"e IDLE\r\nDONE\r\nf STORE 1 +FLAGS.SILENT (\\Deleted)\r\ng AUTHENTICATE PLAIN\r\nAGEAYg==\r\n",
    b"h LIST \"\" (INBOX \"*\") RETURN (STATUS (MESSAGES))\r\ni ID (\"name\" NIL)\r\n",
]


def test_seeds() -> None:
    for seed in SEEDS:
        check(seed)


def test_mutations() -> None:
    rng = random.Random(4321)
    for _ in range(300):
        data = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(data) + 1)
            op = rng.randrange(3)
            if op == 0 and data:
                del data[pos:pos + rng.randint(1, 10)]
            elif op == 1:
                data[pos:pos] = rng.choice([b"{", b"}", b"{999999}", b"{3+}\r\n", b"(", b")", b'"', b"\\", b"\r\n",
                                            b"\x00", b"[", b"]"])
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 8))
        check(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_random(data: bytes) -> None:
    check(data)
