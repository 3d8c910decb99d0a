"""compose(analyze(m)) == m, for the corpus, generated messages and arbitrary bytes; ranged recomposition."""

from __future__ import annotations

import base64
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.corpus import corpus, crlf, messages
from wildduck._speedups import implementations
from wildduck.protocols import mime

IMPLS = implementations("mimescan")


def roundtrip(raw: bytes, scanner: ModuleType, limit: int = mime.DEFAULT_INLINE_TEXT_LIMIT) -> mime.Analysis:
    a = mime.analyze(raw, scanner_module=scanner, inline_text_limit=limit)
    assert mime.compose(a.skeleton, a.parts, a.blobs) == raw
    assert len(a.skeleton) + sum(p.length for p in a.parts) == len(raw) == a.size
    return a


@pytest.fixture(params=sorted(IMPLS))
def scanner(request: pytest.FixtureRequest) -> ModuleType:
    return IMPLS[request.param]


@pytest.mark.parametrize("index", range(len(corpus())))
def test_corpus_round_trips(index: int, scanner: ModuleType) -> None:
    raw = corpus()[index]
    roundtrip(raw, scanner)
    roundtrip(crlf(raw), scanner)
    roundtrip(raw, scanner, limit=0)  # every text body to the blob store too


@settings(max_examples=200, deadline=None)
@given(messages)
def test_generated_messages_round_trip(raw: bytes) -> None:
    for scanner in IMPLS.values():
        a = roundtrip(raw, scanner)
        assert a.tree == mime.analyze(raw, scanner_module=IMPLS["python"]).tree


@settings(max_examples=100, deadline=None)
@given(messages, st.integers(0, 2000), st.integers(0, 2000), st.integers(1, 64))
def test_iter_compose_returns_any_range(raw: bytes, start: int, end: int, chunk: int) -> None:
    a = mime.analyze(raw, inline_text_limit=0)
    fetched: list[str] = []

    def get_blob(key: str) -> bytes:
        fetched.append(key)
        return a.blobs[key]

    pieces = list(mime.iter_compose(a.skeleton, a.parts, get_blob, start, end, chunk))
    assert b"".join(pieces) == raw[start:end]
    assert all(0 < len(p) <= chunk for p in pieces)
    overlapping = {p.blob for p in a.parts if p.offset < end and p.offset + p.length > start}
    assert set(fetched) <= overlapping


def test_attachments_are_cut_and_deduplicated() -> None:
    payload = bytes(range(256)) * 100
    b64 = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    part = b"--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64
    raw = (b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
           + part + part + b"--B--\r\n")
    a = roundtrip(raw, IMPLS["python"])
    assert len(a.parts) == 2 and len(a.blobs) == 1  # the same attachment twice: one blob
    (stored,) = a.blobs.values()
    assert stored == payload  # regular base64 is stored decoded
    assert a.parts[0].encoding == {"kind": "base64", "line": 76, "nl": "\r\n", "final_nl": False}
    assert b"hello" in a.skeleton and b64 not in a.skeleton
    assert a.has_attachments


def test_irregular_base64_is_stored_as_is() -> None:
    body = b"AAEC\r\nAwQFBgcICQ==\r\n"  # lines of different lengths cannot be re-wrapped exactly
    raw = b"Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body
    a = roundtrip(raw, IMPLS["python"])
    assert a.parts[0].encoding == {"kind": "raw"} and a.blobs[a.parts[0].blob] == body


def test_big_text_goes_to_the_blob_store() -> None:
    text = b"lorem ipsum\r\n" * 30000
    raw = b"Subject: big\r\n\r\n" + text
    small = roundtrip(raw, IMPLS["python"])
    assert small.parts == []  # a plain root text body stays inline under the limit
    mp = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\n" + text + b"--q--"
    assert len(roundtrip(mp, IMPLS["python"], limit=1024).parts) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"no header separator at all",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: image/png\r\n\r\nPNG...",  # no close
        b"Content-Type: multipart/mixed\r\n\r\n--x\r\nmissing boundary parameter\r\n--x--\r\n",
        b"Subject: \xff\xfe 8-bit\r\nContent-Type: text/plain\r\n\r\n\xe9t\xe9\n\r\nmixed\rendings",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nx\r\n--a--",
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%broken===\r\n",
        b"Content-Type: multipart/mixed; boundary=" + b"a" * 5000 + b"\r\n\r\n--" + b"a" * 5000 + b"\r\n\r\nx",
    ],
)
def test_malformed_mail_round_trips(raw: bytes, scanner: ModuleType) -> None:
    roundtrip(raw, scanner)


def test_deep_nesting_is_bounded() -> None:
    depth = 200
    raw = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth))
    raw += b"Content-Type: application/x\r\n\r\ndata\r\n"
    a = roundtrip(raw, IMPLS["python"])
    level, node = 0, a.tree
    while node.get("parts"):
        node, level = node["parts"][0], level + 1
    assert level <= 64
