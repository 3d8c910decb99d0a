"""The one RFC 5322 lexer that address and parameter parsing share."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wildduck.protocols.mime import lexer


def test_cfws_returns_the_last_comment() -> None:
    assert lexer.cfws(b"  (one) (t(w)o)  x", 0) == (b"t(w)o", 17)
    assert lexer.cfws(b"x", 0) == (None, 0)
    assert lexer.skip_cfws(b" (unterminated", 0) == 14


def test_quoted_string() -> None:
    assert lexer.quoted_string(b'"a\\"b" rest', 0) == (b'a"b', 6, True)
    assert lexer.quoted_string(b'"open', 0) == (b"open", 5, False)
    assert lexer.quoted_string(b'"tail\\', 0) == (b"tail\\", 6, False)


def test_words_token_domain() -> None:
    assert lexer.words(b' John (x) "Q." Public <', 0) == ([b"John", b"Q.", b"Public"], b"x", 22)
    assert lexer.token(b"text/plain", 0) == (b"text", 4)
    assert lexer.domain(b" [1.2.3.4] x", 0) == (b"[1.2.3.4]", 10)
    assert lexer.domain(b" example.com>", 0) == (b"example.com", 12)
    assert lexer.domain(b">", 0) == (None, 0)


@given(st.binary(max_size=200), st.integers(0, 200))
def test_scanners_never_fail_and_always_advance_within_bounds(value: bytes, start: int) -> None:
    i = min(start, len(value))
    assert i <= lexer.skip_cfws(value, i) <= len(value)
    assert i <= lexer.token(value, i)[1] <= len(value)
    assert i <= lexer.words(value, i)[2] <= len(value)
    assert i <= lexer.domain(value, i)[1] <= len(value)
    if value[i:i + 1] == b'"':
        assert i < lexer.quoted_string(value, i)[1] <= len(value)
    if value[i:i + 1] == b"(":
        assert i < lexer.comment(value, i)[1] <= len(value)
