"""The base subject of RFC 5256 §2.1 (wildduck.protocols.mime.basesubject): each step of the algorithm, the
ABNF's corner cases, encoded words, and inputs built to be slow for a naive implementation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wildduck.protocols.mime.basesubject import base_subject, extract, normalized


@pytest.mark.parametrize(("subject", "base", "reply"), [
    # (3) subj-refwd leaders, any case, with white space and a blob before the colon
    ("Re: test", "test", True),
    ("Re:test", "test", True),
    ("RE: re: Fwd: fw: FWD: test", "test", True),
    ("re : test", "test", True),
    ("Re[2]: test", "test", True),
    ("Re [2] : test", "test", True),
    ("Fwd[x]:test", "test", True),
    # not leaders: the colon is missing, or "re" begins a word
    ("Reply: test", "Reply: test", False),
    ("Fwd test", "Fwd test", False),
    ("Re test", "Re test", False),
    ("Re[2] test", "Re[2] test", False),
    ("Ref: test", "Ref: test", False),
    # blobs before a leader belong to it; (4) a blob alone goes when something is left after it
    ("[list] Re: test", "test", True),
    ("[a] [b] Re: [c] agenda", "agenda", True),
    ("[list] test", "test", False),
    ("[list]test", "test", False),
    ("[a][b]", "[b]", False),
    ("[a] [b] [c]", "[c]", False),
    ("[only a blob]", "[only a blob]", False),
    ("Re: [blob]", "[blob]", True),
    ("[a] Re: [b]", "[b]", True),
    ("[unclosed test", "[unclosed test", False),
    ("[a [b] c", "[a [b] c", False),
    ("[] x", "x", False),
    # (2) trailers: "(fwd)" and white space, repeatedly, then (3) again
    ("test (fwd)", "test", True),
    ("test(fwd)", "test", True),
    ("test (fwd) (FWD)  ", "test", True),
    ("Re: test (fwd)", "test", True),
    ("[blob] (fwd)", "[blob]", True),
    ("(fwd)", "", True),
    ("test (fwd) x", "test (fwd) x", False),
    # (6) [fwd: ...] wrappers, then everything again from (2)
    ("[fwd: test]", "test", True),
    ("[Fwd: Re: test (fwd)]", "test", True),
    ("Re: [fwd: test]", "test", True),
    ("[fwd: [FWD: x]]", "x", True),
    ("[fwd: x] y", "y", False),  # a blob, not a wrapper: it does not end the subject
    ("[fwd:]", "", True),
    ("[fwd: ]", "", True),
    ("[fwdx]", "[fwdx]", False),
    # empty, white space only, leaders only; inner white space made single spaces, case kept
    ("", "", False),
    ("   ", "", False),
    ("Re:", "", True),
    ("Re: Re: ", "", True),
    ("  Lunch \t  plans  ", "Lunch plans", False),
    ("RE: FWD: Test Case", "Test Case", True),
])
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    found = extract(subject)
    assert (found.text, found.reply_or_forward) == (base, reply)
    assert base_subject(subject) == base


@pytest.mark.parametrize(("raw", "base", "reply"), [
    # (1) encoded words decoded first: a leader inside one is a leader
    (b"=?UTF-8?Q?Re=3A_caf=C3=A9?=", "caf\u00e9", True),
    (b"=?UTF-8?B?UmU6IEx1bmNoIHBsYW5z?=", "Lunch plans", True),
    # adjacent encoded words: the white space between them is not text
    (b"=?UTF-8?B?UmU6?= =?UTF-8?B?IGhp?=", "hi", True),
    (b"=?ISO-8859-1?Q?J=F6rg?= (fwd)", "J\u00f6rg", True),
    # folded lines and tabs are single spaces
    (b"Re:\r\n\tfolded\t  subject", "folded subject", True),
    (b"[list]\r\n Fwd:\r\n x", "x", True),
])
def test_header_bytes_are_decoded(raw: bytes, base: str, reply: bool) -> None:
    found = extract(raw)
    assert (found.text, found.reply_or_forward) == (base, reply)


def test_normalized_makes_white_space_single_spaces() -> None:
    assert normalized("a\t\tb\r\n c") == "a b c"
    assert normalized(b"=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=") == "ab"


@pytest.mark.parametrize(("subject", "base"), [
    ("Re: " * 20000 + "x", "x"),
    ("[a] " * 20000 + "x", "x"),
    ("[a]" * 20000, "[a]"),
    ("[" * 20000 + "x", "[" * 20000 + "x"),
    ("x" + " (fwd)" * 20000, "x"),
    ("[fwd: " * 2000 + "x" + "]" * 2000, "x"),
    ("[b] " * 5000 + "Re: " + "[c] " * 5000 + "y", "y"),
])
def test_long_pathological_subjects(subject: str, base: str) -> None:
    assert base_subject(subject) == base


_PIECES = st.sampled_from(["Re:", "re", "Fwd:", "fw", ":", "[", "]", "[x]", " ", "(fwd)", "[fwd:", "a", "B", "\t"])


@given(st.lists(_PIECES, max_size=30).map("".join))
def test_the_base_subject_is_stable(subject: str) -> None:
    """The base subject is a fixed point (extracting it again changes nothing), never starts or ends with white
    space, and is a part of the normalized subject."""
    base = base_subject(subject)
    assert base_subject(base) == base
    assert base == base.strip(" ")
    assert base in normalized(subject)
