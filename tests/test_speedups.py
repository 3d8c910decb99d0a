"""The Cython speedups: selection, the WILDDUCK_NO_EXTENSIONS switch, and that CI really built them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck import _speedups


def test_every_module_has_a_pure_implementation() -> None:
    for name in _speedups.MODULES:
        assert _speedups.implementations(name)["python"].__name__ == f"wildduck._speedups.{name}"


def test_extensions_are_built_when_required() -> None:
    # scripts/dev.sh test sets WILDDUCK_REQUIRE_EXTENSIONS=1 for the Cython run: a failed build must not pass
    # silently as a pure-Python run.
    if os.environ.get("WILDDUCK_REQUIRE_EXTENSIONS") == "1":
        for name in _speedups.MODULES:
            assert _speedups.compiled(name) is not None, f"Cython module _{name} was not built"
            assert _speedups.active()[name] == "cython"
    if _speedups.extensions_disabled():
        assert set(_speedups.active().values()) == {"python"}


def test_no_extensions_switch_selects_pure_python() -> None:
    env = {**os.environ, "WILDDUCK_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-m", "wildduck", "--version"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "pure-python" in out and "mimescan=python" in out


def test_version_reports_the_active_implementation() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WILDDUCK_NO_EXTENSIONS"}
    out = subprocess.run([sys.executable, "-m", "wildduck", "--version"], env=env, capture_output=True,
                         text=True, check=True).stdout
    expected = "cython" if _speedups.compiled("mimescan") is not None else "python"
    assert f"mimescan={expected}" in out


# -- imapfmt: the IMAP string forms and the FETCH response line, Cython against the pure twin -------------------

#: bytes that change the form of a string: NUL, CR, LF, blanks, quote, backslash, 8-bit, brackets
_TRICKY = st.sampled_from([b"\x00", b"\r", b"\n", b" ", b"\t", b'"', b"\\", b"\xc3\xa9", b"\xff", b"a", b"(", b"{"])
_STRINGS = st.one_of(
    st.binary(max_size=40),
    st.lists(_TRICKY, max_size=30).map(b"".join),
    # around the quoted-string limit (1024 bytes), where NULs (3 bytes each once replaced) tip it over
    st.tuples(st.integers(1015, 1030), st.lists(_TRICKY, max_size=4)).map(lambda t: b"x" * t[0] + b"".join(t[1])),
)


def _pair(name: str) -> tuple[object, object]:
    """(pure, compiled) implementations of ``name``; without a build the comparison is skipped, except in CI (where
    the build is part of the test command) and when the build is required."""
    found = _speedups.implementations(name)
    if "cython" not in found:
        if os.environ.get("CI") == "true" or os.environ.get("WILDDUCK_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(f"the Cython build of {name} is missing")
        pytest.skip(f"the Cython build of {name} is not available")
    return found["python"], found["cython"]


def _imapfmt_pair() -> tuple[object, object]:
    return _pair("imapfmt")


@settings(max_examples=600, deadline=None)
@given(data=_STRINGS, utf8=st.booleans())
def test_imapfmt_strings_agree(data: bytes, utf8: bool) -> None:
    py, cy = _imapfmt_pair()
    assert cy.string(data, utf8) == py.string(data, utf8)  # type: ignore[attr-defined]
    assert cy.human_string(data, utf8) == py.human_string(data, utf8)  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None)
@given(seq=st.integers(0, 2**32), items=st.lists(st.binary(max_size=30), max_size=8))
def test_imapfmt_fetch_line_agrees(seq: int, items: list[bytes]) -> None:
    py, cy = _imapfmt_pair()
    assert cy.fetch_line(seq, items) == py.fetch_line(seq, items)  # type: ignore[attr-defined]


def test_imapfmt_known_forms() -> None:
    for mod in _speedups.implementations("imapfmt").values():
        assert mod.string(b'a "b" \\c', False) == b'"a \\"b\\" \\\\c"'
        assert mod.string(b"caf\xc3\xa9", False) == b"{5}\r\ncaf\xc3\xa9"
        assert mod.string(b"caf\xc3\xa9", True) == b'"caf\xc3\xa9"'
        assert mod.string(b"a\x00", True) == b'"a\xef\xbf\xbd"'
        assert mod.human_string(b" a \r\n\t b ", False) == b"{3}\r\na b"
        assert mod.human_string(b'say "hi"', False) == b'{8}\r\nsay "hi"'
        assert mod.fetch_line(7, [b"UID 9", b"FLAGS ()"]) == b"* 7 FETCH (UID 9 FLAGS ())\r\n"
        assert mod.fetch_line(1, []) == b"* 1 FETCH ()\r\n"


# -- compose: the base64 line writer and the dot-stuffing scan, Cython against the pure twin ---------------------

def _compose_pair() -> tuple[object, object]:
    return _pair("compose")


@settings(max_examples=600, deadline=None)
@given(data=st.binary(max_size=400), line=st.one_of(st.sampled_from([4, 64, 76, 998]), st.integers(1, 120)),
       nl=st.sampled_from([b"\r\n", b"\n", b"", b"\r\n\r\n"]), final_nl=st.booleans())
def test_compose_encode_base64_agrees(data: bytes, line: int, nl: bytes, final_nl: bool) -> None:
    py, cy = _compose_pair()
    expected = py.encode_base64(data, line, nl, final_nl)  # type: ignore[attr-defined]
    assert cy.encode_base64(data, line, nl, final_nl) == expected  # type: ignore[attr-defined]
    # and both are base64 in lines of ``line`` characters
    lines = expected.split(nl) if nl else [expected]
    if final_nl and nl:
        assert lines.pop() == b""
    assert b"".join(lines) == base64.b64encode(data)
    if nl:
        assert all(len(x) == line for x in lines[:-1]) and len(lines[-1]) <= line


@settings(max_examples=800, deadline=None)
@given(data=st.lists(st.sampled_from([b"\r", b"\n", b".", b"..", b"a", b"\r\n", b"\r\n.", b"\n."]),
                     max_size=40).map(b"".join))
def test_compose_stuff_dots_agrees(data: bytes) -> None:
    py, cy = _compose_pair()
    expected = data.replace(b"\r\n.", b"\r\n..")
    assert py.stuff_dots(data) == expected  # type: ignore[attr-defined]
    assert cy.stuff_dots(data) == expected  # type: ignore[attr-defined]
    assert cy.stuff_dots(bytearray(data)) == expected  # type: ignore[attr-defined]


def test_compose_known_forms() -> None:
    for mod in _speedups.implementations("compose").values():
        assert mod.encode_base64(b"", 76, b"\r\n", True) == b"\r\n"
        assert mod.encode_base64(b"", 76, b"\r\n", False) == b""
        assert mod.encode_base64(b"abcdef", 4, b"\n", False) == b"YWJj\nZGVm"
        assert mod.encode_base64(b"abcdefg", 4, b"\r\n", True) == b"YWJj\r\nZGVm\r\nZw==\r\n"
        assert mod.encode_base64(b"ab", 3, b"|", False) == b"YWI|="
        with pytest.raises(ValueError):
            mod.encode_base64(b"x", 0, b"\n", False)
        clean = b"no dots here\r\nat all\r\n"
        assert mod.stuff_dots(clean) is clean
        assert mod.stuff_dots(b".a\r\n.b\r\n..c\r\n") == b".a\r\n..b\r\n...c\r\n"
