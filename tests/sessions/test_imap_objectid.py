"""OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) over a socket with imaplib: MAILBOXID from CREATE, SELECT and
STATUS; EMAILID kept by COPY and MOVE, THREADID given at delivery by references and base subject; SAVEDATE set by
each append, copy and move; the SEARCH keys EMAILID, THREADID, SAVEDBEFORE / SAVEDON / SAVEDSINCE and
SAVEDATESUPPORTED, and their errors."""

from __future__ import annotations

import datetime as dt
import imaplib
import re
import time
from pathlib import Path

import trio

from tests.sessions.imap_transcripts import imap_server


def _fetch(m: imaplib.IMAP4, uids: str) -> dict[int, dict[str, str]]:
    typ, data = m.uid("FETCH", uids, "(EMAILID THREADID SAVEDATE INTERNALDATE)")
    assert typ == "OK", data
    out = {}
    for line in data:
        text = line.decode() if isinstance(line, bytes) else line[0].decode()
        uid = int(re.search(r"UID (\d+)", text).group(1))  # type: ignore[union-attr]
        out[uid] = {k: re.search(rf"{k} (\([^)]*\)|\"[^\"]*\"|NIL)", text).group(1)  # type: ignore[union-attr]
                    for k in ("EMAILID", "THREADID", "SAVEDATE", "INTERNALDATE")}
    return out


def _session(address: tuple[str, int]) -> None:
    m = imaplib.IMAP4(*address, timeout=30)
    m.login("alice", "pw")
    assert {"OBJECTID", "SAVEDATE"} <= set(m.capabilities)
    typ, data = m.create("Work")
    assert typ == "OK"
    created = re.search(rb"\[MAILBOXID \(([0-9a-f]+)\)\]", data[0])
    assert created, data
    typ, data = m.status("Work", "(MAILBOXID MESSAGES)")
    assert typ == "OK" and f"MAILBOXID ({created.group(1).decode()})".encode() in data[0], data
    old = '"01-Jan-2020 10:00:00 +0000"'
    for raw in (b"Message-ID: <t1@x>\r\nSubject: Trip\r\n\r\nplans\r\n",
                b"Message-ID: <t2@x>\r\nIn-Reply-To: <t1@x>\r\nSubject: Re: Trip\r\n\r\nyes\r\n",
                b"Message-ID: <b1@x>\r\nSubject: Budget\r\n\r\nnumbers\r\n"):
        assert m.append("INBOX", "", old, raw)[0] == "OK"
    typ, _ = m.select("INBOX")
    assert typ == "OK" and re.fullmatch(r"[0-9a-f]+", m.untagged_responses["MAILBOXID"][0].decode().strip("()"))
    assert m.untagged_responses["MAILBOXID"][0] != f"({created.group(1).decode()})".encode()
    inbox = _fetch(m, "1:*")
    assert len({v["EMAILID"] for v in inbox.values()}) == 3
    assert inbox[1]["THREADID"] == inbox[2]["THREADID"] != inbox[3]["THREADID"]
    today = dt.datetime.now(dt.UTC).strftime("%d-%b-%Y")
    assert all(v["INTERNALDATE"] == old and today in v["SAVEDATE"] for v in inbox.values())
    time.sleep(1.1)  # a later second: the copy's save date is later
    assert m.uid("COPY", "2", "Work")[0] == "OK"
    assert m.uid("MOVE", "3", "Work")[0] == "OK"
    # search keys
    email = inbox[1]["EMAILID"].strip("()")
    thread = inbox[1]["THREADID"].strip("()")
    assert m.uid("SEARCH", "EMAILID", email) == ("OK", [b"1"])
    assert m.uid("SEARCH", "THREADID", thread) == ("OK", [b"1 2"])
    assert m.uid("SEARCH", "EMAILID", "nosuchid") == ("OK", [b""])
    assert m.uid("SEARCH", "SAVEDATESUPPORTED") == ("OK", [b"1 2"])
    assert m.uid("SEARCH", "SAVEDSINCE", today) == ("OK", [b"1 2"])
    assert m.uid("SEARCH", "SAVEDON", today, "NOT", "SINCE", today) == ("OK", [b"1 2"])
    assert m.uid("SEARCH", "SAVEDBEFORE", "1-Jan-2000") == ("OK", [b""])
    assert m.uid("SEARCH", "OR", "THREADID", thread, "SAVEDBEFORE", today) == ("OK", [b"1 2"])
    for bad in (("EMAILID",), ("EMAILID", '"a*b"'), ("THREADID", "x" * 256), ("SAVEDON", "yesterday")):
        try:
            m.uid("SEARCH", *bad)
        except imaplib.IMAP4.error as exc:
            assert "BAD" in str(exc) or "SEARCH" in str(exc), bad
        else:
            raise AssertionError(f"accepted: {bad}")
    # the copy and the moved message in Work
    m.select("Work")
    work = _fetch(m, "1:*")
    assert work[1]["EMAILID"] == inbox[2]["EMAILID"] and work[1]["THREADID"] == inbox[2]["THREADID"]
    assert work[2]["EMAILID"] == inbox[3]["EMAILID"] and work[2]["THREADID"] == inbox[3]["THREADID"]
    # a copy and a move keep the internal date and get their own save date (a second later at least)
    assert all(v["INTERNALDATE"] == old and v["SAVEDATE"] != inbox[2]["SAVEDATE"] for v in work.values())
    assert m.uid("SEARCH", "EMAILID", inbox[2]["EMAILID"].strip("()")) == ("OK", [b"1"])
    m.logout()


async def test_object_ids_and_save_dates(tmp_path: Path) -> None:
    async with imap_server(tmp_path, "alice") as srv:
        with trio.fail_after(60):
            await trio.to_thread.run_sync(_session, srv.address("imap"))
