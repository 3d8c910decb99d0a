"""LIST-EXTENDED (RFC 5258) and CREATE-SPECIAL-USE (RFC 6154 3) against the whole server over a socket:
transcripts after the RFCs' examples (strict, line by line) and imaplib."""

from __future__ import annotations

import imaplib
from pathlib import Path

import pytest
import trio

from tests.sessions.imap_transcripts import imap_server, run

LOGIN = r"""
C: a LOGIN alice pw
S: a OK [CAPABILITY {{[^\]]*}} LIST-EXTENDED CREATE-SPECIAL-USE {{[^\]]*}}] logged in
"""

LIST_EXTENDED = LOGIN + r"""
C: b CREATE Fruit/Apple
S: b OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: c CREATE Fruit/Banana
S: c OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: d CREATE Tofu
S: d OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: e CREATE Vegetable/Broccoli
S: e OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: f SUBSCRIBE Fruit/Banana
S: f OK SUBSCRIBE completed
C: g SUBSCRIBE Vegetable/Broccoli
S: g OK SUBSCRIBE completed
C: h SUBSCRIBE Tofu
S: h OK SUBSCRIBE completed
C: i DELETE Tofu
S: i OK DELETE completed
C: j DELETE Vegetable
S: j OK DELETE completed
# several patterns at once; the extended syntax gets only the attributes asked for
C: k LIST "" ("INBOX" "Sent*")
S: * LIST () "/" INBOX
S: * LIST () "/" "Sent Mail"
S: k OK LIST completed
C: l LIST "" ("INBOX" "Sent*") RETURN (CHILDREN)
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren) "/" "Sent Mail"
S: l OK LIST completed
# SUBSCRIBED: subscribed names, a gone one \NonExistent (RFC 5258 5, example 3; Dovecot's answer too)
C: m LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN SPECIAL-USE)
S: * LIST (\NonExistent \HasNoChildren \Subscribed) "/" Tofu
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasNoChildren \Drafts \Subscribed) "/" Drafts
S: * LIST (\HasNoChildren \Subscribed) "/" Fruit/Banana
S: * LIST (\HasNoChildren \Junk \Subscribed) "/" Junk
S: * LIST (\HasNoChildren \Sent \Subscribed) "/" "Sent Mail"
S: * LIST (\HasNoChildren \Trash \Subscribed) "/" Trash
S: * LIST (\HasNoChildren \Subscribed) "/" Vegetable/Broccoli
S: m OK LIST completed
# RECURSIVEMATCH: a parent whose descendants match the selection but not the pattern gets CHILDINFO (example 5),
# a missing parent is \NonExistent
C: n LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)
S: * LIST (\NonExistent \HasNoChildren \Subscribed) "/" Tofu
S: * LIST (\NonExistent \HasChildren) "/" Vegetable ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasNoChildren \Subscribed) "/" INBOX
S: * LIST (\HasNoChildren \Subscribed) "/" Drafts
S: * LIST (\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))
S: * LIST (\HasNoChildren \Subscribed) "/" Junk
S: * LIST (\HasNoChildren \Subscribed) "/" "Sent Mail"
S: * LIST (\HasNoChildren \Subscribed) "/" Trash
S: n OK LIST completed
# a descendant that matches the pattern itself gives no CHILDINFO
C: o LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Fruit" "Fruit/Banana")
S: * LIST (\Subscribed) "/" Fruit/Banana
S: o OK LIST completed
# without a selection option: no gone name; RETURN (SUBSCRIBED) marks the subscribed ones
C: p LIST "" "Fruit*" RETURN (SUBSCRIBED)
S: * LIST () "/" Fruit
S: * LIST () "/" Fruit/Apple
S: * LIST (\Subscribed) "/" Fruit/Banana
S: p OK LIST completed
C: q LIST "" "%"
S: * LIST (\Noselect \HasChildren) "/" Vegetable
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\HasNoChildren \Drafts) "/" Drafts
S: * LIST (\HasChildren) "/" Fruit
S: * LIST (\HasNoChildren \Junk) "/" Junk
S: * LIST (\HasNoChildren \Sent) "/" "Sent Mail"
S: * LIST (\HasNoChildren \Trash) "/" Trash
S: q OK LIST completed
C: r LIST (REMOTE SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES))
S: * LIST (\Drafts) "/" Drafts
S: * STATUS Drafts (MESSAGES 0)
S: * LIST (\Junk) "/" Junk
S: * STATUS Junk (MESSAGES 0)
S: * LIST (\Sent) "/" "Sent Mail"
S: * STATUS "Sent Mail" (MESSAGES 0)
S: * LIST (\Trash) "/" Trash
S: * STATUS Trash (MESSAGES 0)
S: r OK LIST completed
# the extended syntax calls a missing level \NonExistent, the basic one \Noselect (as Dovecot does)
C: r1 LIST "" ("Vegetable" "Fruit") RETURN (CHILDREN)
S: * LIST (\NonExistent \HasChildren) "/" Vegetable
S: * LIST (\HasChildren) "/" Fruit
S: r1 OK LIST completed
# errors
C: s LIST (RECURSIVEMATCH) "" "%"
S: s BAD LIST: RECURSIVEMATCH needs another selection option (RFC 5258 3.1)
C: t LIST (FOO) "" "%"
S: t BAD LIST: unknown selection option FOO
C: u LIST "" "%" RETURN (FOO)
S: u BAD LIST: unknown return option FOO
"""

CREATE_SPECIAL_USE = LOGIN + r"""
C: b CREATE MyArchive (USE (\Archive))
S: b OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: c LIST "" "MyArchive" RETURN (SPECIAL-USE)
S: * LIST (\Archive) "/" MyArchive
S: c OK LIST completed
# one mailbox per use (WildDuck's rule), one use per mailbox, no virtual mailboxes
C: d CREATE Other (USE (\archive))
S: d NO [USEATTR] MyArchive already has the special use \Archive
C: e CREATE Other (USE (\Sent))
S: e NO [USEATTR] Sent Mail already has the special use \Sent
C: f CREATE Other (USE (\All))
S: f NO [USEATTR] special use \All is not supported
C: g CREATE Other (USE (\Important))
S: g NO [USEATTR] special use \Important is not supported
C: h CREATE Other (USE (\Archive \Junk))
S: h NO [USEATTR] a mailbox has at most one special use
C: i LIST "" "Other"
S: i OK LIST completed
C: j CREATE Other (USE ())
S: j OK [MAILBOXID ({{[0-9a-f]+}})] CREATE completed
C: k CREATE MyArchive (USE (\Flagged))
S: k NO [USEATTR] special use \Flagged is not supported
C: l CREATE MyArchive
S: l NO [ALREADYEXISTS] mailbox 'MyArchive' exists
C: m CREATE Other2 (FOO)
S: m BAD CREATE: unknown create parameter FOO
# the special-use mailbox is protected like the others
C: n DELETE MyArchive
S: n NO [CANNOT] INBOX and special-use mailboxes cannot be deleted
"""


TRANSCRIPTS = {"LIST_EXTENDED": LIST_EXTENDED, "CREATE_SPECIAL_USE": CREATE_SPECIAL_USE}


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
async def test_transcript(tmp_path: Path, name: str) -> None:
    async with imap_server(tmp_path, "alice") as server:
        await run(server, TRANSCRIPTS[name], name)


async def test_imaplib_special_use_mailbox_is_found(tmp_path: Path) -> None:
    """A client that creates its archive with CREATE-SPECIAL-USE finds it again by SPECIAL-USE selection."""
    def go() -> None:
        m = imaplib.IMAP4(*server.address("imap"))
        try:
            m.login("alice", "pw")
            assert m._simple_command("CREATE", "Archives/2026", "(USE (\\Archive))")[0] == "OK"
            typ, data = m.list('""', "*")
            assert typ == "OK" and b'(\\HasNoChildren \\Archive) "/" Archives/2026' in data
            typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "Arch*")
            assert typ == "OK" and m.untagged_responses.pop("LIST") == [b'(\\Archive) "/" Archives/2026']
        finally:
            m.logout()

    async with imap_server(tmp_path, "alice") as server:
        await trio.to_thread.run_sync(go)
