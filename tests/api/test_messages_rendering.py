"""The parsed-message view without I/O (``domain/rendering.py``): WildDuck's attachment numbering, text and HTML,
the intro, sanitizing, and reading bodies from the skeleton or from blobs."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wildduck.domain import composing
from wildduck.domain import rendering as r
from wildduck.domain.messages import prepare
from wildduck.model import MessageRecord


def stored(raw: bytes, flags: tuple[str, ...] = ()) -> MessageRecord:
    p = prepare(raw)
    return MessageRecord(id="0123456789abcdef01234567", user_id="u", mailbox_id="m", uid=7, modseq=1, flags=flags,
                         internal_date=dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC), size=p.size,
                         skeleton=p.skeleton, parts=p.parts, mime_tree=p.mime_tree, envelope=p.envelope,
                         bodystructure=p.bodystructure, subject=p.subject, message_id=p.message_id,
                         header_date=p.header_date)


def view(raw: bytes, **kw: Any) -> dict[str, Any]:
    record = stored(raw)
    return r.message_view(record, r.Source(record, prepare(raw).blobs), user_id="u", **kw)


def test_plain_text_becomes_paragraphs_and_the_intro_skips_quotes() -> None:
    raw = (b"Subject: hi\r\nContent-Type: text/plain; format=flowed\r\n\r\n> quoted line\r\n"
           b"First line of a \r\nflowed paragraph <b>&\r\n\r\n-----\r\nSecond\r\n")
    got = view(raw)
    assert got["text"] == "> quoted line\nFirst line of a flowed paragraph <b>&\n\n-----\nSecond"
    assert got["html"] == ["<p>&gt; quoted line<br>First line of a flowed paragraph &lt;b&gt;&amp;</p>"
                           "<p>-----<br>Second</p>"]  # (the sanitizer writes <br/> as <br>)
    assert got["attachments"] == [] and got["from"] == {"name": "", "address": ""}
    record = stored(raw)
    listed = r.listing_view(record, r.Source(record))
    assert listed["intro"] == "First line of a flowed paragraph <b>& Second"
    assert listed["idate"] == "2024-05-06T07:08:09.123Z" and listed["date"] is None


def test_intro_is_cut_at_a_space_with_an_ellipsis() -> None:
    assert r.make_intro("word " * 40).endswith("word…")
    assert len(r.make_intro("word " * 40)) <= 129


def test_big_text_bodies_come_from_their_blob_and_are_numbered() -> None:
    big = ("lorem ipsum " * 30000).encode()  # over 300 KiB: stored as a blob, and numbered as WildDuck does
    raw = (b"Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
           + big + b"\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\nxyz\r\n--b--\r\n")
    record = stored(raw)
    source = r.Source(record)
    needed = r.text_blobs(source)
    assert len(needed) == 1
    got = r.message_view(record, r.Source(record, prepare(raw).blobs), user_id="u")
    assert got["text"].startswith("lorem ipsum lorem") and len(got["text"]) > 300_000
    assert [a["id"] for a in got["attachments"]] == ["ATT00002"]  # ATT00001 is the big text, not listed
    assert got["attachments"][0]["filename"] == "att00002.bin"


def test_html_is_sanitized_and_cid_links_resolve() -> None:
    draft = composing.Composition(
        from_=composing.Mailbox("a@example.org", "A"), to=[composing.Mailbox("b@example.org")], subject="s",
        html='<div style="color:red;position:fixed" onmouseover="x()"><a href="javascript:evil()">a</a>'
             '<a href="https://example.org/">b</a><img src="cid:pic"><iframe src="https://x"></iframe>'
             '<form><input name="p"></form><style>body{}</style></div>',
        attachments=[composing.NewAttachment(b"\x89PNG", "p.png", "image/png", "pic")])
    raw = composing.compose(draft)
    got = view(raw, link=lambda a: f"/att/{a}")
    (html,) = got["html"]
    assert 'style="color:red"' in html and "position" not in html and "onmouseover" not in html
    assert "javascript" not in html and "<iframe" not in html and "<form" not in html and "<input" not in html
    assert '<a href="https://example.org/" rel="noopener noreferrer">b</a>' in html
    assert '<img src="/att/ATT00001">' in html
    assert got["text"].startswith("ab")  # made from the HTML by the composer
    assert got["attachments"][0]["related"] is True and got["attachments"][0]["cid"] == "<pic>"


def test_filenames_encoded_words_and_rfc2231_and_attached_messages() -> None:
    inner = b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n" \
            b"Content-Type: text/plain\r\n\r\ninner text\r\n--i\r\nContent-Type: image/gif\r\n" \
            b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"GIF89a") + b"\r\n--i--\r\n"
    raw = (b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
           b"Content-Type: text/plain\r\n\r\nouter text\r\n--o\r\n"
           b"Content-Type: application/pdf\r\nContent-Disposition: attachment;"
           b" filename*=utf-8''%C3%BCber.pdf\r\n\r\n%PDF\r\n--o\r\n"
           b"Content-Type: application/pdf; name=\"=?utf-8?q?gr=C3=BC=C3=9Fe?=.pdf\"\r\n\r\n%PDF\r\n--o\r\n"
           b"Content-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--o--\r\n")
    got = view(raw)
    assert [(a["id"], a["filename"], a["contentType"]) for a in got["attachments"]] == [
        ("ATT00001", "über.pdf", "application/pdf"), ("ATT00002", "grüße.pdf", "application/pdf"),
        ("ATT00003", "att00003.gif", "image/gif")]
    assert got["text"] == "outer text\ninner text"
    record = stored(raw)
    source = r.Source(record, prepare(raw).blobs)
    assert source.decoded(r.parse(source).by_id("ATT00003").node) == b"GIF89a"  # type: ignore[union-attr]


def test_flags_and_threads() -> None:
    assert r.flag_view(("\\Answered", "$Forwarded", "\\Seen")) == {
        "seen": True, "deleted": False, "flagged": False, "draft": False, "answered": False, "forwarded": True}
    # the thread is the one the store gave the message at delivery (tests/api/test_threads.py threads real ones)
    first = dataclasses.replace(stored(b"Message-ID: <root@x>\r\nSubject: a\r\n\r\nx\r\n"),
                                thread_id="0123456789abcdef0123abcd")
    assert r.listing_view(first, r.Source(first))["thread"] == "0123456789abcdef0123abcd"


PIECES = [b"Content-Type: multipart/mixed; boundary=b\r\n", b"Content-Type: text/html; charset=bogus\r\n",
          b"Content-Type: message/rfc822\r\n", b"Content-Transfer-Encoding: base64\r\n",
          b"Content-Transfer-Encoding: quoted-printable\r\n", b"Content-Disposition: attachment; filename*=x''%\r\n",
          b"Content-ID: <a>\r\n", b"From: \"x\" <@>, =?x?q?=ff?=\r\n", b"--b\r\n", b"--b--\r\n", b"\r\n",
          b"<img src=cid:a>", b"=C3=\r\n", b"\xff\xfe", b"References: \r\n", b"List-ID: <>\r\n"]


@given(st.lists(st.sampled_from(PIECES) | st.binary(max_size=20), max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_message_renders_without_raising(chunks: list[bytes]) -> None:
    raw = b"".join(chunks) or b"x"
    record = stored(raw)
    source = r.Source(record, prepare(raw).blobs)
    r.message_view(record, source, user_id="u", link=str)
    r.listing_view(record, r.Source(record), include_headers=True)
    for a in r.parse(source).numbered:
        source.decoded(a.node)
