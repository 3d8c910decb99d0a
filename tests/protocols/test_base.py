"""The shared sans-I/O pieces: line framing with limits, and the dot-stuffing codec, in arbitrary chunkings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.protocols._base import (
    NEED_DATA,
    PAUSED,
    BareLF,
    DotStuffer,
    DotUnstuffer,
    LineBuffer,
    Reason,
    Rejection,
    dot_stuff,
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at the given (sorted, deduplicated) positions."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return [c for c in out if c]


def _lines(buf: LineBuffer, chunks: list[bytes]) -> list[bytes | Rejection]:
    out: list[bytes | Rejection] = []
    for chunk in chunks:
        buf.feed(chunk)
        while (line := buf.next_line()) is not None:
            out.append(line)
    return out


def test_sentinels_are_distinct_and_named() -> None:
    assert NEED_DATA is not PAUSED
    assert repr(NEED_DATA) == "NEED_DATA" and repr(PAUSED) == "PAUSED"


def test_line_buffer_policies() -> None:
    data = b"a\r\nb\nc\rd\r\n"
    assert _lines(LineBuffer(100, bare_lf=BareLF.ACCEPT), [data]) == [b"a", b"b", b"c\rd"]
    assert _lines(LineBuffer(100, bare_lf=BareLF.REJECT), [data]) == [
        b"a", Rejection(Reason.BARE_LF, "lines must end with CRLF"), Rejection(Reason.BARE_CR,
                                                                              "lines must end with CRLF")]
    assert _lines(LineBuffer(100, bare_lf=BareLF.IGNORE), [data]) == [b"a", b"b\nc\rd"]


def test_overlong_line_is_discarded_while_reading_then_reported() -> None:
    buf = LineBuffer(10)
    for _ in range(1000):
        buf.feed(b"x" * 100)
        assert buf.next_line() is None
        assert len(buf) <= 11  # never the whole line
    buf.feed(b"\r\nok\r\n")
    assert buf.next_line() == Rejection(Reason.LINE_TOO_LONG, "line too long")
    assert buf.next_line() == b"ok"
    assert buf.next_line() is None


def test_line_of_exactly_the_limit_is_accepted() -> None:
    assert _lines(LineBuffer(4), [b"abcd\r", b"\nabcde\r\n"]) == [
        b"abcd", Rejection(Reason.LINE_TOO_LONG, "line too long")]


def test_eof_is_recorded() -> None:
    buf = LineBuffer(10)
    buf.feed(b"partial")
    buf.feed(b"")
    assert buf.next_line() is None and buf.eof


@settings(max_examples=300)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=12),
       st.sampled_from(list(BareLF)), st.integers(1, 40))
def test_line_buffer_chunking_does_not_matter(data: bytes, cuts: list[int], policy: BareLF, limit: int) -> None:
    whole = _lines(LineBuffer(limit, bare_lf=policy), [data])
    assert _lines(LineBuffer(limit, bare_lf=policy), _chunks(data, cuts)) == whole
    assert _lines(LineBuffer(limit, bare_lf=policy), [data[i:i + 1] for i in range(len(data))]) == whole


# --- dot-stuffing ------------------------------------------------------------------------------------------------
def _unstuff(chunks: list[bytes], max_size: int = 1 << 20) -> DotUnstuffer:
    u = DotUnstuffer(max_size)
    for chunk in chunks:
        if u.feed(chunk):
            break
    return u


def test_only_crlf_dot_crlf_ends_the_data() -> None:
    u = _unstuff([b"a\n.\nb\r\n.\r", b"\nMAIL FROM:<x@y>\r\n"])
    assert u.done and u.rest == b"MAIL FROM:<x@y>\r\n"
    assert u.data() == b"a\n.\nb\r\n" and u.problems == [Reason.BARE_LF]
    assert u.rejection() == Rejection(Reason.BARE_LF, "message contains a bare LF")


def test_problems_are_reported_in_order_of_gravity() -> None:
    u = _unstuff([b"a\rb\x00\r\n.\r\n"])
    assert u.rejection() == Rejection(Reason.NUL, "message contains a NUL byte")
    assert set(u.problems) == {Reason.BARE_CR, Reason.NUL}
    assert _unstuff([b"clean\r\n.\r\n"]).rejection() is None


def test_size_limit_is_enforced_while_reading() -> None:
    u = DotUnstuffer(1000)
    for _ in range(1000):
        assert not u.feed(b"y" * 98 + b"\r\n")
        assert u.buffered <= 1000 + 8
    assert u.feed(b".\r\n")
    assert u.data() == b"" and u.rejection() == Rejection(Reason.TOO_BIG, "message too big")


def test_empty_data_and_leading_dots() -> None:
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b".a\r\n.\r\n") == b"..a\r\n..\r\n.\r\n"
    assert dot_stuff(b"no line end") == b"no line end\r\n.\r\n"
    assert _unstuff([b".\r\n"]).data() == b""


@settings(max_examples=500)
@given(st.binary(max_size=400) | st.lists(st.sampled_from([b"\r\n", b".", b"\r", b"\n", b"x", b"\x00"]),
                                          max_size=60).map(b"".join),
       st.lists(st.integers(0, 500), max_size=15))
def test_unstuff_of_stuff_is_identity(data: bytes, cuts: list[int]) -> None:
    """unstuff(stuff(x)) == x for any bytes (with CRLF added when x does not end with one), in any chunking."""
    expected = data if not data or data.endswith(b"\r\n") else data + b"\r\n"
    stuffer = DotStuffer()
    stuffed = b"".join(stuffer.feed(c) for c in _chunks(data, cuts)) + stuffer.end()
    assert stuffed == dot_stuff(data)
    for chunks in (_chunks(stuffed + b"NEXT", cuts), [stuffed[i:i + 1] for i in range(len(stuffed))] + [b"NEXT"]):
        u = _unstuff(chunks)
        assert u.done
        assert u.data() == expected
    u = _unstuff([stuffed + b"NEXT"])
    assert u.rest == b"NEXT"
    bare = expected.count(b"\n") != expected.count(b"\r\n") or expected.count(b"\r") != expected.count(b"\r\n")
    assert (u.rejection() is None) == (not bare and b"\x00" not in expected)
