"""The scanner primitives, in both implementations, and their agreement on arbitrary bytes."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck._speedups import implementations

IMPLS = implementations("mimescan")


@pytest.fixture(params=sorted(IMPLS))
def scan(request: pytest.FixtureRequest) -> ModuleType:
    return IMPLS[request.param]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"A: b\r\n\r\nbody", 8),
        (b"A: b\n\nbody", 6),
        (b"A: b\r\nC: d\r\n", 12),  # no empty line: everything is header
        (b"\r\nbody", 2),  # no header at all
        (b"A: b\r\n\nmixed", 7),
        (b"", 0),
    ],
)
def test_header_end(scan: ModuleType, data: bytes, expected: int) -> None:
    assert scan.header_end(data, 0, len(data)) == expected


def test_header_end_respects_bounds(scan: ModuleType) -> None:
    data = b"X: 1\r\n\r\nY: 2\r\n\r\n"
    assert scan.header_end(data, 8, len(data)) == 16
    assert scan.header_end(data, 0, 5) == 5


structured = st.lists(st.sampled_from([b"--b", b"--b--", b"\r\n", b"\n", b"\r", b"x", b" ", b"--", b"b", b"A: 1",
                                        b"\t", b":", b"\xff"]),
                      max_size=40).map(b"".join)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=200), structured), st.integers(0, 50), st.integers(0, 250))
def test_implementations_agree(data: bytes, start: int, end: int) -> None:
    # the test command always builds the extension (tests/test_speedups.py checks it was built)
    py, cy = IMPLS["python"], IMPLS["cython"]
    start, end = min(start, len(data)), min(end, len(data))
    assert py.header_end(data, start, end) == cy.header_end(data, start, end)
    assert py.header_fields(data, start, end) == cy.header_fields(data, start, end)


def test_header_fields(scan: ModuleType) -> None:
    block = b"Subject: x\r\n  folded\r\nBad line\r\n its continuation\r\nX-A : v\rX-B:\tw\n\nNot: a header"
    assert scan.header_fields(block, 0, len(block)) == [("subject", b"x  folded"), ("x-a", b"v"), ("x-b", b"w")]
