"""The tree, header parsing, ENVELOPE, BODYSTRUCTURE and text extraction on known messages."""

from __future__ import annotations

import datetime as dt
from email.header import Header

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.corpus import corpus
from wildduck.protocols import mime
from wildduck.protocols.mime import bodystructure, headers, jsonbytes

MULTI = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.com>\r\n"
    b"To: a@example.com, \"Doe, John\" <john@example.com>\r\n"
    b"Cc: undisclosed-recipients:;\r\n"
    b"Subject: =?iso-8859-1?q?caf=E9?= time\r\n"
    b"Date: Tue, 3 Mar 2026 10:00:00 +0100\r\n"
    b"Message-ID: <abc@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: multipart/alternative; boundary=inner\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
    b"\r\n"
    b"Hello =\r\nworld \r\nagain\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=\"utf-8\"\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>H=C3=A9llo <b>there</b></p><script>evil()</script>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b"Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <pdf1>\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"From: x@y.z\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)


def test_tree_offsets() -> None:
    a = mime.analyze(MULTI)
    root = a.tree
    assert root["ct"] == ["multipart", "mixed"]
    assert MULTI[root["hs"]:root["bs"]].endswith(b"\r\n\r\n")
    alt, pdf, msg = root["parts"]
    plain, html = alt["parts"]
    assert MULTI[plain["bs"]:plain["be"]] == b"Hello =\r\nworld \r\nagain"
    assert plain["lines"] == 2  # line feeds (as Dovecot counts), the last line has none before the delimiter
    assert MULTI[pdf["bs"]:pdf["be"]] == b"JVBERi0xLjQK"
    assert msg["ct"] == ["message", "rfc822"]
    assert MULTI[msg["msg"]["bs"]:msg["msg"]["be"]] == b"inner body"
    assert MULTI[msg["hs"]:msg["bs"]] == b"Content-Type: message/rfc822\r\n\r\n"


def test_summary() -> None:
    a = mime.analyze(MULTI)
    assert a.subject == "café time"
    assert a.message_id == "<abc@example.com>"
    assert a.header_date == dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)


def test_envelope() -> None:
    env = mime.analyze(MULTI).envelope
    assert env[0] == "Tue, 3 Mar 2026 10:00:00 +0100"
    assert env[1] == "=?iso-8859-1?q?caf=E9?= time"  # raw: clients decode
    assert env[2] == [["=?utf-8?q?J=C3=BCrgen?=", None, "jurgen", "example.com"]]
    assert env[3] == env[4] == env[2]  # sender and reply-to default to from
    assert env[5] == [[None, None, "a", "example.com"], ["Doe, John", None, "john", "example.com"]]
    assert env[6] == [[None, None, "undisclosed-recipients", None], [None, None, None, None]]
    assert env[7] is None and env[8] is None
    assert env[9] == "<abc@example.com>"


def test_bodystructure() -> None:
    bs = mime.analyze(MULTI).bodystructure
    alt, pdf, msg, subtype, params, disposition, language, location = bs
    assert subtype == "mixed" and params == ["boundary", "outer"]
    assert alt[0][:7] == ["text", "plain", ["charset", "utf-8", "format", "flowed"], None, None, "7bit", 22]
    assert alt[0][7] == 2  # lines: line feeds
    assert alt[1][:6] == ["text", "html", ["charset", "utf-8"], None, None, "quoted-printable"]
    assert alt[2] == "alternative"
    assert pdf[:7] == ["application", "pdf", ["name", "doc.pdf"], "<pdf1>", None, "base64", 12]
    assert pdf[8] == ["attachment", ["filename*", "utf-8''r%C3%A9sum%C3%A9.pdf"]]
    assert msg[0:2] == ["message", "rfc822"]
    assert msg[7][1] == "inner"  # envelope of the encapsulated message
    assert msg[8][:2] == ["text", "plain"]
    body = bodystructure.body(bs)
    assert body[0][0] == ["text", "plain", ["charset", "utf-8", "format", "flowed"], None, None, "7bit", 22, 2]
    assert body[1] == pdf[:7]


def test_defaults_follow_rfc_2045() -> None:
    bs = mime.analyze(b"Subject: x\r\n\r\nhi\r\n").bodystructure
    assert bs == ["text", "plain", ["charset", "us-ascii"], None, None, "7bit", 4, 1, None, None, None, None]
    digest = (b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\nx\r\n--d--\r\n")
    part = mime.analyze(digest).tree["parts"][0]
    assert part["ct"] == ["message", "rfc822"] and "msg" in part


def test_text_extraction() -> None:
    a = mime.analyze(MULTI)
    assert "Jürgen" not in a.text and "café" not in a.text  # the top-level header is not body text
    # as Dovecot searches: lines as written (no format=flowed joining), HTML as written, an encapsulated message's
    # body but not its header (SEARCH TEXT finds that in header_text), no application/* content
    assert "Hello =\r\nworld \r\nagain" in a.text
    assert "<p>Héllo <b>there</b></p><script>evil()</script>" in a.text
    assert "inner body" in a.text and "Subject: inner" not in a.text and "Subject: inner\r\n" in a.header_text
    assert "JVBERi0" not in a.text and "%PDF" not in a.text


def test_non_utf8_header_bytes_survive_losslessly() -> None:
    raw = b"Subject: caf\xe9\r\n\r\nx"
    env = mime.analyze(raw).envelope
    assert jsonbytes.from_json(env[1]) == b"caf\xe9"
    assert isinstance(env[1], dict)


def test_rfc2231_and_quoted_params() -> None:
    f = headers.fields(b"Content-Type: application/x; name*0*=utf-8''f%C3%BC; name*1=r.txt; x=\"a\\\"b\"\r\n\r\n")
    typ, sub, params = headers.content_type(f)
    assert (typ, sub) == ("application", "x")
    assert params == {"name": "für.txt", "x": 'a"b'}


def test_invalid_content_type_falls_back_to_text_plain() -> None:
    assert headers.content_type(headers.fields(b"Content-Type: garbage\r\n\r\n")) == (
        "text", "plain", {"charset": "us-ascii"})


@settings(max_examples=200)
@given(st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60))
def test_encoded_words_round_trip(text: str) -> None:
    encoded = Header(text, "utf-8").encode().encode("ascii")
    assert headers.decode_words(encoded) == text


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_header_parsers_never_raise(data: bytes) -> None:
    f = headers.fields(data)
    headers.content_type(f)
    headers.content_disposition(f)
    headers.parse_addresses(data)
    headers.decode_words(data)


def test_corpus_structures_are_json_round_trippable() -> None:
    import json

    for raw in corpus():
        a = mime.analyze(raw)
        for value in (a.tree, a.envelope, a.bodystructure):
            assert json.loads(json.dumps(value)) == value


def test_huge_rfc2231_section_number_does_not_raise() -> None:
    # int() refuses more than 4300 digits: such a "section number" is just a parameter name
    raw = b"Content-Type: text/plain; x*" + b"1" * 5000 + b"=v; y*" + b"2" * 5000 + b"*=w\r\n\r\nx"
    assert mime.analyze(raw).bodystructure[0] == "text"


def test_bare_lf_becomes_crlf_on_storage() -> None:
    from wildduck.protocols.mime.lines import crlf

    assert crlf(b"a\nb\r\nc\rd\n") == b"a\r\nb\r\nc\rd\r\n"
    same = b"a\r\nb\r\n"
    assert crlf(same) is same
