"""mbsync (isync) two-way sync of a 500-message mailbox with flags and deletions on both sides."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imapclient
import trio

from tests.clients import client_binary
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer

COUNT = 500


def write_rc(tmp_path: Path, port: int) -> Path:
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount wd
Host 127.0.0.1
Port {port}
User alice
Pass pw
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account wd

MaildirStore local
Path {tmp_path}/mail/
Inbox {tmp_path}/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    return rc


def maildir_state(inbox: Path) -> dict[str, str]:
    """Subject -> maildir flag letters, for every message file."""
    state = {}
    for sub in ("cur", "new"):
        for f in (inbox / sub).iterdir():
            subject = next(line for line in f.read_bytes().splitlines() if line.startswith(b"Subject: "))
            state[subject[9:].decode()] = f.name.split(":2,")[-1] if ":2," in f.name else ""
    return state


async def test_two_way_sync(server: RunningServer, tmp_path: Path) -> None:
    mbsync = client_binary("mbsync", "isync")
    rc = write_rc(tmp_path, server.address("imap")[1])
    (tmp_path / "mail").mkdir()

    def run_mbsync() -> None:
        proc = subprocess.run([mbsync, "-c", str(rc), "-a"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def deliver_all() -> None:
        with LMTPClient(*server.address("lmtp")) as c:
            c.lhlo()
            for i in range(COUNT):
                _r, replies = c.send_message("s@example.net", ["alice@example.com"],
                                             b"Subject: m%03d\r\nFrom: s@example.net\r\n\r\nbody %d\r\n" % (i, i))
                assert replies[0][0] == 250

    with trio.fail_after(300):
        await trio.to_thread.run_sync(deliver_all)
        await trio.to_thread.run_sync(run_mbsync)
        inbox = tmp_path / "mail" / "INBOX"
        assert len(maildir_state(inbox)) == COUNT

        # local side: flag m000-m009 as seen+flagged, delete m010-m014 (trashed flag, expunged by mbsync)
        for sub in ("cur", "new"):
            for f in list((inbox / sub).iterdir()):
                subject = maildir_subject(f)
                base = f.name.split(":2,")[0]
                if subject < "m010":
                    f.rename(inbox / "cur" / f"{base}:2,FS")
                elif subject < "m015":
                    f.rename(inbox / "cur" / f"{base}:2,ST")
        # server side: answer m020-m029, delete m030-m034
        def server_changes() -> None:
            c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
            c.login("alice", "pw")
            c.select_folder("INBOX")
            by_subject = {env[b"ENVELOPE"].subject.decode(): uid
                          for uid, env in c.fetch(c.search(["ALL"]), ["ENVELOPE"]).items()}
            c.add_flags([by_subject[f"m{i:03d}"] for i in range(20, 30)], [imapclient.ANSWERED])
            c.delete_messages([by_subject[f"m{i:03d}"] for i in range(30, 35)])
            c.expunge()
            c.logout()

        await trio.to_thread.run_sync(server_changes)
        await trio.to_thread.run_sync(run_mbsync)

        def server_state() -> dict[str, str]:
            c = imapclient.IMAPClient(*server.address("imap"), ssl=False)
            c.login("alice", "pw")
            c.select_folder("INBOX")
            state = {}
            for _uid, data in c.fetch(c.search(["ALL"]), ["ENVELOPE", "FLAGS"]).items():
                letters = "".join(sorted({b"\\Answered": "R", b"\\Flagged": "F", b"\\Seen": "S"}[f]
                                         for f in data[b"FLAGS"] if f in (b"\\Answered", b"\\Flagged", b"\\Seen")))
                state[data[b"ENVELOPE"].subject.decode()] = letters
            c.logout()
            return state

        remote = await trio.to_thread.run_sync(server_state)
    local = {k: "".join(sorted(set(v) & set("RFS"))) for k, v in maildir_state(inbox).items()}
    assert len(remote) == COUNT - 10
    assert remote == local
    assert remote["m000"] == "FS" and remote["m020"] == "R"
    assert "m012" not in remote and "m031" not in remote


def maildir_subject(path: Path) -> str:
    line = next(x for x in path.read_bytes().splitlines() if x.startswith(b"Subject: "))
    return line[9:].decode()
