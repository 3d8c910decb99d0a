"""FETCH helpers that do not need a stored message."""

from __future__ import annotations

import pytest

from wildduck.protocols.imap import grammar as g
from wildduck.protocols.imap.fetch import sets_seen


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        (b"BODY[]", True),
        (b"BODY[1.TEXT]<0.10>", True),
        (b"BODY.PEEK[]", False),
        (b"BINARY[]", True),
        (b"BINARY[1]", True),
        (b"BINARY.PEEK[]", False),
        (b"BINARY.SIZE[1]", False),
        (b"RFC822", True),
        (b"RFC822.TEXT", True),
        (b"RFC822.HEADER", False),
        (b"BODY", False),
        (b"BODYSTRUCTURE", False),
        (b"FLAGS", False),
    ],
)
def test_sets_seen_predicate(attribute: bytes, expected: bool) -> None:
    """RFC 3501 6.4.5 and RFC 3516 4.2: which attributes set \\Seen."""
    item = g.parse_fetch_item(attribute)
    assert sets_seen([item]) is expected
    assert sets_seen([g.parse_fetch_item(b"UID"), item, g.parse_fetch_item(b"FLAGS")]) is expected


def test_sets_seen_of_no_items() -> None:
    assert sets_seen([]) is False
