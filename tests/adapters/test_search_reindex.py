"""Messages indexed for search by an older version (before SEARCH matched as Dovecot's) are indexed again: on SQLite
by the schema v15 migration (``tests/adapters/test_sqlite_specific.py``), on MongoDB by maintenance
(``reindex_search``, here on FerretDB, from two instances). Afterwards their search data and every answer equal
those of the same messages ingested fresh.

The older index is written as that version wrote it: the text of inline text/plain and text/html parts only
(``protocols.mime.text.part_text``, quoted-printable by ``quopri``), the top-level header with its encoded words
decoded (``header_text``), header values decoded as written, everything ``casefold``-ed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from tests.adapters.conftest import make_user, open_instances
from wildduck.adapters._codec import SEARCH_FIELDS, SEARCH_SEPARATOR
from wildduck.domain.messages import prepare
from wildduck.model import NewMessage
from wildduck.model import search as q
from wildduck.protocols.mime import headers, text, tree
from wildduck.protocols.mime import scanner as mime_scanner
from wildduck.protocols.mime.lines import crlf

pytestmark = pytest.mark.usefixtures("ferretdb_server")  # (the SQLite test of v15 is in test_sqlite_specific.py)

CORPUS = Path(__file__).resolve().parents[1] / "oracle" / "messages" / "search"
#: a quoted-printable body with soft line breaks, a text attachment in base64, application parts (a PDF, base64
#: octets), case folding beyond ASCII, an encapsulated message, address forms, UTF-8 and latin-1 headers
NAMES = ("01-qp-soft-break", "07-text-attachment", "08-application-parts", "15-case-folding", "16-message-rfc822",
         "26-address-forms", "13-utf8-headers", "02-base64-utf8")
#: (needle, headers too) for BODY (False) and TEXT (True)
TEXTS = [("kaleidoscope", False), ("after the equals", False), ("CAFÉ", False), ("cafe", False), ("crème", False),
         ("xylophone", False), ("notes.txt", True), ("notes.txt", False), ("quagmire", True), ("marmalade", True),
         ("STRASSE", False), ("straße", False), ("οδος", False), ("ΣΟΦΟΣ", False), ("ecole", False), ("é", False),
         ("tangerine", False), ("quince", True), ("gooseberry", True), ("grüße", True), ("über", False),
         ("x-inner", True), ("zeppelin", False), ("ZOË", True), ("gr", True)]
HEADERS = [q.Header("from", "doe, john"), q.Header("from", '"doe, john" <john'), q.Header("cc", "zoë"),
           q.Header("cc", "team: <b@"), q.Header("subject", "addresses and spaces"), q.Header("subject", "forwarded"),
           q.Header("to", "undisclosed-recipients:;"), q.Header("from", "sender <sender@example.net>"),
           q.Header("subject", "GRÜSSE"), q.Header("subject", "grüße")]


def corpus() -> list[bytes]:
    return [(CORPUS / f"{name}.eml").read_bytes() for name in NAMES]


def old_index(raw: bytes) -> tuple[str, str, dict[str, str | None]]:
    """What the version before stored of ``raw`` (as ingest keeps it: CRLF): body text, header text, and the header
    search values by key."""
    buf = crlf(raw)
    root = tree.build(buf, mime_scanner())
    body = "\n".join(t for t in (text.part_text(buf, leaf) for leaf in tree.leaves(root)) if t)
    header = buf[:root["bs"]]
    fields = headers.fields(header)
    values = {name: SEARCH_SEPARATOR.join(dict.fromkeys(headers.decode_words(v).casefold() for k, v in fields
                                                        if k == name)) or None for name in SEARCH_FIELDS}
    return body.casefold(), text.header_text(header).casefold(), values


async def answers(store: Any, mailbox_id: str) -> list[frozenset[int]]:
    """Every answer of :data:`TEXTS` and :data:`HEADERS` in the mailbox, as the store gives it."""
    out = [frozenset(await store.text_search(mailbox_id, needle, headers_too=too)) for needle, too in TEXTS]
    for header in HEADERS:
        found = await store.candidates(mailbox_id, header)
        assert isinstance(found, q.Decided)  # the store decides these keys itself: the stored values are the answer
        out.append(frozenset(found))
    return out


async def stored(store: Any, messages: int) -> tuple[list[frozenset[int]], list[frozenset[int]]]:
    """The answers in INBOX and in Trash (where every message was copied)."""
    user = await store.find_user("alice")
    inbox = await store.find_mailbox(user.id, "INBOX")
    trash = await store.find_mailbox(user.id, "Trash")
    return await answers(store, inbox.id), await answers(store, trash.id)


async def fill(store: Any) -> int:
    """The corpus delivered to alice's INBOX, then copied to her Trash; how many messages INBOX holds."""
    user = await make_user(store)
    inbox = await store.find_mailbox(user.id, "INBOX")
    trash = await store.find_mailbox(user.id, "Trash")
    raws = corpus()
    await store.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in raws])
    await store.copy_messages(inbox.id, list(range(1, len(raws) + 1)), trash.id)
    return len(raws)


def expected_fresh(found: list[frozenset[int]]) -> None:
    """A few answers of a fresh ingest, by the rules (so that an index that finds nothing cannot pass)."""
    by_needle = dict(zip(TEXTS, found, strict=False))
    assert by_needle[("kaleidoscope", False)] == {1}  # a soft line break joined
    assert by_needle[("after the equals", False)] == {1}  # white space after the "="
    assert by_needle[("xylophone", False)] == {2}  # a text/plain attachment, base64, stored as a blob
    assert by_needle[("quagmire", True)] == by_needle[("marmalade", True)] == set()  # application/* is not text
    assert by_needle[("notes.txt", True)] == {2} and by_needle[("notes.txt", False)] == set()  # a part's header
    assert by_needle[("cafe", False)] == {1}  # decomposed: "é" is "e" and an accent
    assert by_needle[("STRASSE", False)] == set() and by_needle[("straße", False)] == {4}  # no full case mapping
    assert by_needle[("tangerine", False)] == {5} and by_needle[("quince", True)] == {5}


def _old_fields(raw: bytes) -> dict[str, Any]:
    """:func:`old_index` as a message document keeps it."""
    body, head, values = old_index(raw)
    return {"text": body, "head": head, **{f"s_{name}": value for name, value in values.items()}}


async def test_maintenance_reindexes_what_an_older_version_indexed(tmp_path: Path) -> None:
    """Documents without the search version, holding the older index, give the older answers (a non-ASCII needle
    found by its ``casefold`` in them only); two instances' maintenance re-indexes them, at the same time, and
    then every document and answer equals a fresh ingest's; a further run finds nothing."""
    from wildduck.adapters.mongodb import codec

    a, b = await open_instances("mongodb", tmp_path)
    try:
        messages = await fill(a)
        fresh = await stored(a, messages)
        expected_fresh(fresh[0])
        assert fresh[0] == fresh[1]
        search_keys = ["text", "head", *codec.SEARCH_VALUE_FIELDS, codec.SEARCH_VERSION_FIELD]
        projection = {"_id": 0, "mailbox": 1, "uid": 1, **dict.fromkeys(search_keys, 1)}
        docs = sorted(a.db.messages.find({}, projection), key=lambda d: (d["mailbox"], d["uid"]))
        assert len(docs) == 2 * messages and all(d[codec.SEARCH_VERSION_FIELD] == codec.SEARCH_VERSION for d in docs)
        raws = corpus()
        for d in docs:  # as the version before stored them
            a.db.messages.update_one({"mailbox": d["mailbox"], "uid": d["uid"]},
                                     {"$set": _old_fields(raws[d["uid"] - 1]),
                                      "$unset": {codec.SEARCH_VERSION_FIELD: ""}})
        old = await stored(a, messages)
        by_needle = dict(zip(TEXTS, old[0], strict=False))
        assert by_needle[("xylophone", False)] == set() and by_needle[("kaleidoscope", False)] == {1}
        assert by_needle[("CAFÉ", False)] == {1}  # found by its casefold, in these documents only
        assert by_needle[("cafe", False)] == set()  # their "é" is not decomposed
        assert old != fresh

        assert await a.reindex_search(3) == 3  # a bounded batch
        async with trio.open_nursery() as nursery:  # both instances at once
            done: list[int] = []

            async def run(store: Any) -> None:
                done.append(await store.reindex_search())

            nursery.start_soon(run, a)
            nursery.start_soon(run, b)
        assert sum(done) >= 2 * messages - 3  # each document by one of them at least
        assert await a.reindex_search() == await b.reindex_search() == 0  # nothing left
        again = sorted(a.db.messages.find({}, projection), key=lambda d: (d["mailbox"], d["uid"]))
        assert again == docs
        assert await stored(a, messages) == fresh
        assert await stored(b, messages) == fresh
        assert await a.check_integrity() == []
    finally:
        await a.close()
        await b.close()
