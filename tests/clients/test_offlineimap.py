"""offlineimap (offlineimap3) two-way sync of 200 messages in two folders, with changes on both sides.

offlineimap parses every message with Python's ``email`` package and writes it out again (LF line ends in the
Maildir, CRLF towards the server). For well-formed mail that is the identity (modulo line ends), so those local copies
must equal the server's bytes; the dozen malformed corpus messages that the ``email`` package does not reproduce
come out normalised (offlineimap logs their MIME defects), and only their presence is checked. The server's bytes are
compared with what was delivered, byte for byte.
"""

from __future__ import annotations

import imaplib
import os
import random
import re
import subprocess
import time
from base64 import b64encode
from email import policy
from email.parser import BytesParser
from pathlib import Path

import trio

from tests.clients import client_binary
from tests.corpus import corpus, crlf
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer

GENERATED = 152  # plus the 48 corpus messages: 200
LETTERS = {b"\\Answered": "R", b"\\Flagged": "F", b"\\Seen": "S", b"\\Draft": "D", b"\\Deleted": "T"}
# offlineimap's own policies (folder/Base.py): it parses server data with the CRLF one, writes Maildir files with LF
_POLICY_LF = policy.default.clone(cte_type="8bit", utf8=True, refold_source="none")
_POLICY_CRLF = _POLICY_LF.clone(linesep="\r\n")

State = dict[str, dict[str, tuple[str, bytes]]]  # folder -> Message-ID -> (flag letters, bytes with LF line ends)


def generated(i: int, rng: random.Random, nl: bytes = b"\r\n") -> bytes:
    """Message ``<g<i>@example.net>``: plain text, 8-bit UTF-8 text, or multipart with a base64 attachment."""
    head = (b"From: Sender <s@example.net>\nTo: alice@example.com\nSubject: g%03d\nMessage-ID: <g%03d@example.net>\n"
            b"Date: Mon, 01 Jan 2024 10:%02d:00 +0000\nMIME-Version: 1.0\n" % (i, i, i % 60))
    if i % 3 == 0:
        blob = b64encode(rng.randbytes(rng.randrange(1, 40_000)))
        lines = b"\n".join(blob[j:j + 76] for j in range(0, len(blob), 76))
        msg = (head + b'Content-Type: multipart/mixed; boundary="=_b%03d"\n\nThis is MIME.\n'
               b"--=_b%03d\nContent-Type: text/plain; charset=us-ascii\n\nsee attachment %d\n"
               b'--=_b%03d\nContent-Type: application/octet-stream; name="f%d.bin"\n'
               b'Content-Disposition: attachment; filename="f%d.bin"\nContent-Transfer-Encoding: base64\n\n'
               b"%s\n--=_b%03d--\n" % (i, i, i, i, i, i, lines, i))
    elif i % 3 == 1:
        msg = (head + b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
               + f"gr\u00fc\u00dfe {i} \u2013 \u65e5\u672c\n".encode() * (1 + i % 5))
    else:
        msg = head + b"Content-Type: text/plain\n\n" + b"line %d\n" % i * (1 + i % 30)
    return msg.replace(b"\n", nl)


def write_rc(tmp_path: Path, port: int) -> Path:
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = wd
metadata = {tmp_path}/meta
maxsyncaccounts = 1

[Account wd]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {tmp_path}/mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port}
remoteuser = alice
remotepass = pw
ssl = no
starttls = no
auth_mechanisms = LOGIN
maxconnections = 2
""")
    return rc


def message_id(data: bytes) -> str:
    m = re.search(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]*>)", data)
    assert m is not None, data[:300]
    return m.group(1).decode()


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def survives_email_package(data: bytes) -> bool:
    """Whether offlineimap's parse-and-write-out keeps ``data`` (LF line ends) as it is."""
    return BytesParser(policy=_POLICY_CRLF).parsebytes(crlf(data)).as_bytes(policy=_POLICY_LF) == data


def strip_offlineimap_header(data: bytes) -> bytes:
    return re.sub(rb"(?im)^X-OfflineIMAP: [^\n]*\n", b"", data)


def maildir_files(box: Path) -> dict[str, Path]:
    """Message-ID -> file, in one Maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        for f in (box / sub).iterdir():
            mid = message_id(f.read_bytes())
            assert mid not in out, f"duplicate {mid} in {box}"
            out[mid] = f
    return out


def local_state(mail: Path, folders: tuple[str, ...]) -> State:
    state: State = {}
    for folder in folders:
        state[folder] = {}
        for mid, f in maildir_files(mail / folder).items():
            flags = f.name.split(":2,")[1] if ":2," in f.name else ""
            state[folder][mid] = ("".join(sorted(set(flags) & set("DFRST"))), strip_offlineimap_header(f.read_bytes()))
    return state


def set_maildir_flags(f: Path, letters: str) -> None:
    f.rename(f.parent.parent / "cur" / f"{f.name.split(':2,')[0]}:2,{''.join(sorted(letters))}")


def connect(srv: RunningServer) -> imaplib.IMAP4:
    c = imaplib.IMAP4(*srv.address("imap"))
    typ, data = c.login("alice", "pw")
    assert typ == "OK", data
    return c


def fetch_all(c: imaplib.IMAP4, items: str) -> list[tuple[bytes, bytes]]:
    """(FETCH metadata incl. the part after the literal, literal) for every message in the selected folder."""
    typ, data = c.uid("FETCH", "1:*", f"({items})")
    assert typ == "OK", data
    out = []
    for n, item in enumerate(data):
        if isinstance(item, tuple):  # items may follow the literal: "* 1 FETCH (UID 1 BODY[] {37}" lit " FLAGS ())"
            tail = data[n + 1] if n + 1 < len(data) and isinstance(data[n + 1], bytes) else b""
            out.append((item[0] + tail, item[1]))
    return out


def uid_map(c: imaplib.IMAP4) -> dict[str, int]:
    """Message-ID -> UID in the selected folder."""
    return {message_id(lit): int(re.search(rb"UID (\d+)", meta).group(1))  # type: ignore[union-attr]
            for meta, lit in fetch_all(c, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")}


def server_state(srv: RunningServer, folders: tuple[str, ...]) -> tuple[State, dict[str, bytes], dict[str, bytes]]:
    """(state, Message-ID -> exact bytes, folder -> STATUS response)."""
    c = connect(srv)
    state: State = {}
    raw = {}
    status = {}
    for folder in folders:
        typ, data = c.status(folder, "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
        assert typ == "OK", data
        status[folder] = data[0]
        state[folder] = {}
        assert c.select(folder, readonly=True)[0] == "OK"
        for meta, lit in fetch_all(c, "FLAGS BODY.PEEK[]"):
            flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).split()  # type: ignore[union-attr]
            mid = message_id(lit)
            assert mid not in state[folder], f"duplicate {mid} on the server in {folder}"
            state[folder][mid] = ("".join(sorted(LETTERS[f] for f in flags if f in LETTERS)), lf(lit))
            raw[mid] = lit
        c.close()
    c.logout()
    return state, raw, status


def internaldates(srv: RunningServer, folder: str) -> dict[str, float]:
    """Message-ID -> INTERNALDATE (epoch seconds) in ``folder``."""
    c = connect(srv)
    assert c.select(folder, readonly=True)[0] == "OK"
    out = {message_id(lit): time.mktime(imaplib.Internaldate2tuple(meta))  # type: ignore[arg-type]
           for meta, lit in fetch_all(c, "INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]")}
    c.logout()
    return out


def uidnext(status: bytes) -> int:
    return int(re.search(rb"UIDNEXT (\d+)", status).group(1))  # type: ignore[union-attr]


def assert_converged(local: State, remote: State, expected: dict[str, dict[str, str]]) -> None:
    for folder, want in expected.items():
        assert {mid: f for mid, (f, _) in remote[folder].items()} == want, f"server {folder}"
        assert {mid: f for mid, (f, _) in local[folder].items()} == want, f"local {folder}"
        for mid, (_f, data) in local[folder].items():
            server_copy = remote[folder][mid][1]
            assert data == server_copy or not survives_email_package(server_copy), f"{folder} {mid} not byte-exact"


async def test_two_way_sync(server: RunningServer, tmp_path: Path) -> None:
    offlineimap = client_binary("offlineimap", "offlineimap3")
    rc = write_rc(tmp_path, server.address("imap")[1])
    mail = tmp_path / "mail"
    folders: tuple[str, ...] = ("INBOX", "Archive")
    rng = random.Random(1)
    messages = [crlf(m) for m in corpus()] + [generated(i, rng) for i in range(GENERATED)]
    rng.shuffle(messages)
    originals = {message_id(m): m for m in messages}
    inbox_msgs, archive_msgs = messages[:150], messages[150:]
    logs: list[Path] = []

    def run_offlineimap() -> None:
        log = tmp_path / f"offlineimap-{len(logs) + 1}.log"  # "-d imap" adds the IMAP transcript (single-threaded)
        logs.append(log)
        proc = subprocess.run([offlineimap, "-c", str(rc), "-o", "-u", "basic", "-l", str(log)],
                              capture_output=True, text=True, timeout=120)
        problems = [line for line in re.findall(r"(?m)^\S+ \S+ (?:WARNING|ERROR|CRITICAL): .*",
                                                log.read_text(errors="replace"))
                    # offlineimap reports the malformed corpus messages (MIME defects found by the email package)
                    if not re.search(r"WARNING: (UID \d+ has defects: |\s*\.\.\. applying multipart boundary fix)",
                                     line)]
        assert proc.returncode == 0 and not problems, (f"exit {proc.returncode}, log {log}\n" + "\n".join(problems)
                                                       + proc.stdout[-3000:] + proc.stderr[-3000:])

    def deliver(msgs: list[bytes]) -> None:
        with LMTPClient(*server.address("lmtp")) as c:
            c.lhlo()
            for m in msgs:
                _r, replies = c.send_message("s@example.net", ["alice@example.com"], m)
                assert replies[0][0] == 250

    def append(folder: str, msgs: list[bytes], flags: str) -> None:
        c = connect(server)
        for m in msgs:
            typ, data = c.append(folder, flags, None, m)
            assert typ == "OK", data
        c.logout()

    def setup_server() -> None:
        deliver(inbox_msgs)
        c = connect(server)
        assert c.create("Archive")[0] == "OK"
        c.logout()
        append("Archive", archive_msgs, r"(\Seen)")

    with trio.fail_after(120):
        await trio.to_thread.run_sync(setup_server)
        await trio.to_thread.run_sync(run_offlineimap)

        # 1. everything arrived: the server kept the delivered bytes, offlineimap stored them (LF line ends)
        local = local_state(mail, folders)
        remote, raw, _ = await trio.to_thread.run_sync(server_state, server, folders)
        assert raw == originals
        expected = {"INBOX": {message_id(m): "" for m in inbox_msgs},
                    "Archive": {message_id(m): "S" for m in archive_msgs}}
        assert_converged(local, remote, expected)
        exact = [mid for folder in folders for mid, (_f, data) in local[folder].items() if data == lf(originals[mid])]
        assert len(exact) >= 185  # all generated ones and most corpus messages survive email's re-serialisation
        assert all(mid in exact for mid in originals if mid.startswith("<g"))
        assert (mail / "INBOX").is_dir() and (mail / "Archive").is_dir()

        ib = sorted(expected["INBOX"])
        ar = sorted(expected["Archive"])

        # 2a. server side: flags set and cleared, messages expunged, new mail delivered and appended
        new_inbox = [generated(i, rng) for i in range(200, 210)]
        new_archive = [generated(i, rng) for i in range(210, 213)]

        def server_changes() -> dict[str, int]:
            c = connect(server)
            c.select("INBOX")
            uids = uid_map(c)
            for mids, op in ((ib[0:5], r"+FLAGS (\Answered)"), (ib[5:10], r"+FLAGS (\Flagged \Seen)"),
                             (ib[10:15], r"+FLAGS (\Deleted)")):
                assert c.uid("STORE", ",".join(str(uids[m]) for m in mids), op)[0] == "OK"
            assert c.expunge()[0] == "OK"
            c.select("Archive")
            uids = uid_map(c)
            for mids, op in ((ar[0:3], r"-FLAGS (\Seen)"), (ar[3:5], r"+FLAGS (\Deleted)")):
                assert c.uid("STORE", ",".join(str(uids[m]) for m in mids), op)[0] == "OK"
            assert c.expunge()[0] == "OK"
            c.logout()
            deliver(new_inbox)
            append("Archive", new_archive, r"(\Flagged \Seen)")
            return {f: uidnext(s) for f, s in server_state(server, folders)[2].items()}

        uidnext_before = await trio.to_thread.run_sync(server_changes)
        for mid in ib[0:5]:
            expected["INBOX"][mid] = "R"
        for mid in ib[5:10]:
            expected["INBOX"][mid] = "FS"
        for mid in ib[10:15]:
            del expected["INBOX"][mid]
        for mid in ar[3:5]:
            del expected["Archive"][mid]
        for mid in ar[0:3]:
            expected["Archive"][mid] = ""
        expected["INBOX"].update({message_id(m): "" for m in new_inbox})
        expected["Archive"].update({message_id(m): "FS" for m in new_archive})

        # 2b. local side: flags in Maildir file names, removed files, new messages in new/ and cur/, a new folder
        inbox_files = maildir_files(mail / "INBOX")
        archive_files = maildir_files(mail / "Archive")
        for mids, letters in ((ib[20:25], "FS"), (ib[25:28], "S"), (ib[28:30], "ST")):
            for mid in mids:
                set_maildir_flags(inbox_files[mid], letters)
                expected["INBOX"][mid] = letters
        for mid in ib[30:35]:
            inbox_files[mid].unlink()
            del expected["INBOX"][mid]
        for mid in ar[10:13]:
            set_maildir_flags(archive_files[mid], "")
            expected["Archive"][mid] = ""
        for mid in ar[13:15]:
            archive_files[mid].unlink()
            del expected["Archive"][mid]
        local_new = {"INBOX": [generated(300, rng, b"\n"), generated(301, rng, b"\n")],
                     "Archive": [generated(302, rng, b"\n")], "Projects": [generated(303, rng, b"\n")]}
        for sub in ("cur", "new", "tmp"):
            (mail / "Projects" / sub).mkdir(parents=True)
        upload_dates = {}
        for n, (path, m) in enumerate([("INBOX/new/1700000000.M1P1.localhost", local_new["INBOX"][0]),
                                       ("INBOX/new/1700000001.M2P1.localhost", local_new["INBOX"][1]),
                                       ("Archive/cur/1700000002.M3P1.localhost:2,RS", local_new["Archive"][0]),
                                       ("Projects/cur/1700000003.M4P1.localhost:2,S", local_new["Projects"][0])]):
            (mail / path).write_bytes(m)
            upload_dates[message_id(m)] = 1_700_000_000.0 + 3600 * n
            os.utime(mail / path, (upload_dates[message_id(m)],) * 2)  # offlineimap APPENDs it with this date
        expected["INBOX"].update({message_id(m): "" for m in local_new["INBOX"]})
        expected["Archive"][message_id(local_new["Archive"][0])] = "RS"
        expected["Projects"] = {message_id(local_new["Projects"][0]): "S"}
        folders += ("Projects",)
        uidnext_before["Projects"] = 1

        # 2c. second run: both sides converge; the uploads are byte-exact (CRLF) and were appended exactly once
        await trio.to_thread.run_sync(run_offlineimap)
        local = local_state(mail, folders)
        remote, raw, status = await trio.to_thread.run_sync(server_state, server, folders)
        assert_converged(local, remote, expected)
        for folder, msgs in local_new.items():
            for m in msgs:
                assert raw[message_id(m)] == crlf(m)
                assert local[folder][message_id(m)][1] == m
            assert uidnext(status[folder]) == uidnext_before[folder] + len(msgs)
            dates = await trio.to_thread.run_sync(internaldates, server, folder)
            assert {message_id(m): dates[message_id(m)] for m in msgs} == {message_id(m): upload_dates[message_id(m)]
                                                                            for m in msgs}
        for m in new_inbox + new_archive:
            assert raw[message_id(m)] == m
        assert [p for folder in folders for p in (mail / folder / "tmp").iterdir()] == []

        # 3. a third run changes nothing on either side
        before_files = {p.relative_to(mail): p.read_bytes() for p in mail.rglob("*") if p.is_file()}
        await trio.to_thread.run_sync(run_offlineimap)
        after_files = {p.relative_to(mail): p.read_bytes() for p in mail.rglob("*") if p.is_file()}
        remote_after, _raw, status_after = await trio.to_thread.run_sync(server_state, server, folders)
    assert after_files == before_files
    assert remote_after == remote
    assert status_after == status
