"""IMAP4rev2 (RFC 9051) beside IMAP4rev1, chosen with ``ENABLE IMAP4rev2``, against the whole server over a socket.

RFC 9051 Appendix E, "Changes from RFC 3501 / IMAP4rev1", item by item (paraphrased; the numbers are this list's,
not the RFC's), and what wildduck does once a client has enabled IMAP4rev2 (an IMAP4rev1 client sees none of the
changed responses):

1. 64-bit message and body part sizes: literals up to 12 digits, FETCH partial ranges up to 2^63 (``number64``);
   messages are limited by ``[limits] max_message_size`` anyway.
2. Folded in NAMESPACE, UNSELECT, UIDPLUS, ESEARCH, SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED, LIST-STATUS,
   MOVE, LITERAL- (LITERAL+ is advertised, which includes it), RFC 4466's ABNF, RFC 5530's response codes, the
   FETCH side of BINARY and SPECIAL-USE's mailbox attributes: all implemented and advertised in both versions.
3. STATUS SIZE and STATUS DELETED: both (DELETED counts the ``\\Deleted`` messages; accepted from IMAP4rev1
   clients too).
4. SEARCH answers with ESEARCH: every SEARCH and UID SEARCH without RETURN is answered as RETURN (ALL)
   (``* ESEARCH (TAG "t") [UID] ALL set``), never ``* SEARCH``.
5. Which SEARCH keys match substrings: unchanged (header and text keys are substring matches, the others exact).
6. RFC 2231 parameter continuations decoded: BODYSTRUCTURE joins them (``headers.imap_params``; a charset-encoded
   value stays encoded, as ``name*``, as Dovecot answers), in both versions.
7. COPYUID for MOVE and UID MOVE: sent (an untagged OK before the expunges), in both versions.
8. COPY/MOVE never create the target; NO [TRYCREATE] when it is missing: so in both versions.
9. The CLOSED response code: a SELECT or EXAMINE while a mailbox is selected says ``* OK [CLOSED]`` first (also
   when the new selection then fails). IMAP4rev1 sessions do not get it (see the report: RFC 7162 asks it of
   every CONDSTORE server).
10. SELECT/EXAMINE return an untagged LIST with the mailbox's name (and its special use): sent.
11. SELECT/EXAMINE no longer return the UNSEEN response code: not sent.
12. SELECT/EXAMINE no longer return RECENT: not sent, nor on new messages.
13. ``\\Recent`` is gone (and SEARCH NEW/OLD/RECENT, STATUS RECENT with it): no message is ``\\Recent`` in an
    IMAP4rev2 session (FLAGS never show it; the old keys still parse, RECENT and NEW match nothing). The
    messages are still claimed, so no IMAP4rev1 session sees them ``\\Recent`` either.
14. LSUB deprecated (LIST (SUBSCRIBED) instead): both work.
15. CHECK removed (NOOP instead): CHECK still works.
16. RFC822, RFC822.HEADER, RFC822.TEXT deprecated: still answered.
17. IDLE may report changes to other mailboxes: it reports the selected one's (NOTIFY is not implemented).
18. Every unsolicited FETCH carries the UID: flag changes reported by NOOP, IDLE or after a command do.
19. Mailbox names (and headers) in UTF-8, modified UTF-7 not required: enabling IMAP4rev2 also turns on the
    UTF8=ACCEPT behaviour (UTF-8 mailbox names in and out, ENVELOPE/BODYSTRUCTURE strings in UTF-8).
20. ``\\NonExistent`` in LIST: a missing superior level (its mailbox deleted, inferiors left) is ``\\NonExistent``
    (which implies ``\\Noselect``) to an IMAP4rev2 client, as in any extended LIST; a basic IMAP4rev1 LIST keeps
    ``\\Noselect``. Subscribed names that are gone are ``\\NonExistent`` in both.
21. New keywords with meaning ($Forwarded, $MDNSent, $Junk, $NotJunk, $Phishing): stored like any keyword
    (PERMANENTFLAGS has ``\\*``).
22. The HASCHILDREN response code (DELETE of a mailbox with inferiors may be refused with it): not needed, such a
    DELETE succeeds and leaves the inferiors (RFC 3501 and 9051 allow that).
23. The ALREADYEXISTS/NONEXISTENT/... codes of RFC 5530 (now in the base): sent by the error table.
24. APPEND of a ``literal8`` and BINARY[]: implemented (BINARY).
"""

from __future__ import annotations

import imaplib
import re
from pathlib import Path

import trio

from tests.sessions.imap_transcripts import SYSTEM_FLAGS, imap_server, run, selected

THREE = "".join(f"@deliver alice\nSubject: m{i}\n\nbody {i}\n@end\n" for i in range(1, 4))


def selected_rev2(tag: str, *, exists: int, uidnext: int, name: str = "INBOX", attrs: str = "", keywords: str = "",
                  readonly: bool = False, rev1: str = "", conn: str = "") -> str:
    """The server's lines for ``tag SELECT`` (``EXAMINE`` if ``readonly``) of a mailbox whose messages carry
    ``keywords``, on connection ``conn``: for IMAP4rev2 no RECENT, no UNSEEN, a LIST; for IMAP4rev1 ``rev1``
    gives the RECENT and UNSEEN lines instead."""
    flags = SYSTEM_FLAGS + keywords
    middle = rev1.splitlines() if rev1 else [f'* LIST ({attrs}) "/" {name}']
    lines = [f"* FLAGS ({flags})", f"* OK [PERMANENTFLAGS ({flags} \\*)] flags permitted", f"* {exists} EXISTS",
             *middle, r"* OK [UIDVALIDITY {{\d+}}] UIDs valid", f"* OK [UIDNEXT {uidnext}] predicted next UID",
             r"* OK [MAILBOXID ({{[0-9a-f]+}})] Ok",
             r"* OK [HIGHESTMODSEQ {{\d+}}] highest",
             f"{tag} OK {'[READ-ONLY] EXAMINE' if readonly else '[READ-WRITE] SELECT'} completed"]
    return "".join(f"S{conn}: {line}\n" for line in lines)


TRANSCRIPT = THREE + r"""
C: a LOGIN alice pw
S: a OK [CAPABILITY IMAP4rev1 IMAP4rev2 {{[^\]]*}}] logged in
C: b ENABLE IMAP4rev2
S: * ENABLED IMAP4rev2
S: b OK ENABLE completed
C: c ENABLE imap4rev2
S: * ENABLED
S: c OK ENABLE completed
C: d SELECT INBOX
""" + selected_rev2("d", exists=3, uidnext=4) + r"""C: e FETCH 1:* (FLAGS)
S: * 1 FETCH (FLAGS ())
S: * 2 FETCH (FLAGS ())
S: * 3 FETCH (FLAGS ())
S: e OK FETCH completed
C: f SEARCH ALL
S: * ESEARCH (TAG "f") ALL 1:3
S: f OK SEARCH completed
C: g UID SEARCH 2:3
S: * ESEARCH (TAG "g") UID ALL 2:3
S: g OK UID SEARCH completed
C: h SEARCH DELETED
S: * ESEARCH (TAG "h")
S: h OK SEARCH completed
C: i SEARCH RETURN (COUNT) RECENT
S: * ESEARCH (TAG "i") COUNT 0
S: i OK SEARCH completed
C: j STORE 2:3 +FLAGS (\Deleted $Phishing)
S: * FLAGS ({{.*}} $Phishing)
S: * OK [PERMANENTFLAGS ({{.*}} $Phishing \*)] flags permitted
S: * 2 FETCH (FLAGS (\Deleted $Phishing))
S: * 3 FETCH (FLAGS (\Deleted $Phishing))
S: j OK STORE completed
C: k STATUS INBOX (MESSAGES DELETED SIZE)
S: * STATUS INBOX (MESSAGES 3 DELETED 2 SIZE {{\d+}})
S: k OK STATUS completed
# another session's changes: an unsolicited FETCH carries the UID; a new message brings no RECENT
C2: a LOGIN alice pw
S2: a OK [CAPABILITY {{[^\]]*}}] logged in
C2: b SELECT INBOX
""" + selected_rev2("b", exists=3, uidnext=4, keywords=" $Phishing", conn="2",
                    rev1="* 0 RECENT\n* OK [UNSEEN 1] first unseen message") + r"""C2: c STORE 1 +FLAGS.SILENT (\Seen)
S2: c OK STORE completed
@deliver alice
Subject: m4

body 4
@end
C: l NOOP
S: * 1 FETCH (UID 1 FLAGS (\Seen))
S: * 4 EXISTS
S: l OK NOOP completed
C: m FETCH 4 (FLAGS)
S: * 4 FETCH (FLAGS ())
S: m OK FETCH completed
# SELECT with a mailbox selected: CLOSED first, even when the new selection fails
C: n EXAMINE Trash
S: * OK [CLOSED] previous mailbox closed
""" + selected_rev2("n", exists=0, uidnext=1, name="Trash", attrs=r"\Trash", readonly=True) + r"""C: o SELECT Nowhere
S: * OK [CLOSED] previous mailbox closed
S: o NO [NONEXISTENT] no mailbox Nowhere
C: p SELECT INBOX
""" + selected_rev2("p", exists=4, uidnext=5, keywords=" $Phishing") + r"""C: q UNSELECT
S: q OK UNSELECT completed
C: r SELECT INBOX
""" + selected_rev2("r", exists=4, uidnext=5, keywords=" $Phishing") + r"""C: s CREATE "Résumé/2026"
S: s OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: t DELETE "Résumé"
S: t OK DELETE completed
C: u LIST "" "R*"
S: * LIST (\NonExistent \HasChildren) "/" "Résumé"
S: * LIST (\HasNoChildren) "/" "Résumé/2026"
S: u OK LIST completed
C: v SELECT "Résumé/2026"
S: * OK [CLOSED] previous mailbox closed
""" + selected_rev2("v", exists=0, uidnext=1, name='"Résumé/2026"') + r"""
# UNAUTHENTICATE undoes ENABLE (RFC 8437): IMAP4rev1 answers again after the next login
C: w UNAUTHENTICATE
S: w OK UNAUTHENTICATE completed
C: x LOGIN alice pw
S: x OK [CAPABILITY {{[^\]]*}}] logged in
C: y EXAMINE INBOX
""" + selected_rev2("y", exists=4, uidnext=5, keywords=" $Phishing", readonly=True,
                    rev1="* 0 RECENT\n* OK [UNSEEN 2] first unseen message") + r"""C: z SEARCH SEEN
S: * SEARCH 1
S: z OK SEARCH completed
"""

REV1_UNCHANGED = THREE + r"""
C: a LOGIN alice pw
S: a OK [CAPABILITY IMAP4rev1 IMAP4rev2 {{[^\]]*}}] logged in
C: b SELECT INBOX
""" + selected("b", exists=3, recent=3, unseen=1, uidnext=4) + r"""C: c SEARCH ALL
S: * SEARCH 1 2 3
S: c OK SEARCH completed
C: d EXAMINE INBOX
""" + selected("d", exists=3, recent=0, unseen=1, uidnext=4, readonly=True) + r"""C: e STATUS INBOX (DELETED)
S: * STATUS INBOX (DELETED 0)
S: e OK STATUS completed
C: f CREATE "A/B"
S: f OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: g DELETE A
S: g OK DELETE completed
C: h LIST "" "A*"
S: * LIST (\Noselect \HasChildren) "/" A
S: * LIST (\HasNoChildren) "/" A/B
S: h OK LIST completed
"""


async def test_rev2_transcript(tmp_path: Path) -> None:
    async with imap_server(tmp_path, "alice") as server:
        await run(server, TRANSCRIPT, "IMAP4rev2")


async def test_rev1_sessions_are_unchanged(tmp_path: Path) -> None:
    async with imap_server(tmp_path, "alice") as server:
        await run(server, REV1_UNCHANGED, "IMAP4rev1")


async def test_rev2_is_seen_by_imaplib(tmp_path: Path) -> None:
    """A Python client that enables IMAP4rev2 gets its SEARCH answers as ESEARCH and no RECENT count."""
    def go() -> None:
        messages = [f"Subject: s{i}\r\n\r\nx\r\n".encode() for i in range(2)]
        m = imaplib.IMAP4(*server.address("imap"))
        try:
            m.login("alice", "pw")
            for raw in messages:
                assert m.append("INBOX", "", None, raw)[0] == "OK"
            assert "IMAP4REV2" in m.capabilities
            assert m._simple_command("ENABLE", "IMAP4rev2")[0] == "OK"
            assert m.untagged_responses.pop("ENABLED") == [b"IMAP4rev2"]
            m.select("INBOX")
            assert "RECENT" not in m.untagged_responses and m.untagged_responses.pop("LIST") == [b'() "/" INBOX']
            assert m._simple_command("UID", "SEARCH", "ALL")[0] == "OK"
            (answer,) = m.untagged_responses.pop("ESEARCH")
            assert re.fullmatch(rb'\(TAG "[^"]+"\) UID ALL 1:2', answer), answer
            assert "SEARCH" not in m.untagged_responses
        finally:
            m.logout()

    async with imap_server(tmp_path, "alice") as server:
        await trio.to_thread.run_sync(go)
