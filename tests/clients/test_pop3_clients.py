"""Debian's POP3 clients (fetchmail, getmail6, mpop) against the whole server, over real sockets.

Every scenario starts with a 300-message INBOX (distinct Subjects and Message-IDs; some with lines that start with
"." or "From ", a lone "." as the last line, a folded header, 8-bit UTF-8 text or a small base64 attachment) and
checks, through IMAP, what the POP3 sessions changed: RETR marks \\Seen and DELE moves to Trash (marked \\Seen), both
only at QUIT; a client killed mid-download changes nothing. What the clients stored locally is compared with the
delivered bytes, allowing only what each client adds by design:

* fetchmail (MDA delivery): CRLF becomes LF; a 3-line ``Received:`` header is prepended.
* getmail6 (MDA_external): CRLF becomes LF; ``Return-Path: <unknown>``, ``Delivered-To: unknown`` and a 2-line
  ``Received:`` header naming the message's UIDL (``msgid:...``) are prepended.
* mpop (mbox delivery): CRLF becomes LF; each message gets a ``From MAILER-DAEMON <date>`` line and a 3-line
  ``Received:`` header in front, mboxrd quoting (``>`` before lines matching ``^>*From ``) and an empty line after it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
from base64 import b64encode
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import imapclient
import pytest
import trio

from tests.clients import client_binary
from wildduck.model import AppendResult
from wildduck.testing.server import RunningServer, free_port, running_server

COUNT = 300
ADDRESS = "alice@example.com"
KEY = re.compile(rb"^Message-ID: <(m\d{3})\.pop3@example\.net>", re.MULTILINE)


def message(i: int) -> bytes:
    """Message ``m<i>`` (Subject and Message-ID say so), CRLF line ends."""
    rng = random.Random(i)
    key = f"m{i:03d}"
    head = [f"From: Sender {i} <sender{i}@example.net>", "To: Alice <alice@example.com>", f"Subject: {key}",
            f"Message-ID: <{key}.pop3@example.net>", f"Date: Mon, 01 Jan 2024 {i // 60 % 24:02d}:{i % 60:02d}:00 +0000",
            "MIME-Version: 1.0"]
    if i % 7 == 0:
        head.append("X-Folded: a header that goes on\r\n\tonto a second line")
    text = [f"message {i}", "plain line " * (1 + i % 9)]
    if i % 5 == 0:
        text += [".leading dot", "..two leading dots", ".", "From the start of a line", ">From quoted already",
                 " .indented dot"]
    if i % 10 == 5:
        text.append(".")  # a lone dot as the last line: "..", then the terminator
    part = "Content-Type: text/plain; charset=us-ascii"
    if i % 11 == 0:
        text.append("gr\u00fc\u00dfe \u2013 \u65e5\u672c")
        part = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
    body = "\r\n".join(text) + "\r\n"
    if i % 3 == 0:
        blob = b64encode(rng.randbytes(rng.randrange(200, 1500))).decode()
        attachment = "\r\n".join(blob[j:j + 76] for j in range(0, len(blob), 76))
        raw = ("\r\n".join(head) + f'\r\nContent-Type: multipart/mixed; boundary="b{i}"\r\n\r\n'
               f"This is a MIME message.\r\n--b{i}\r\n{part}\r\n\r\n{body}--b{i}\r\n"
               f'Content-Type: application/octet-stream; name="f{i}.bin"\r\n'
               f'Content-Disposition: attachment; filename="f{i}.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
               f"{attachment}\r\n--b{i}--\r\n")
    else:
        raw = "\r\n".join(head) + f"\r\n{part}\r\n\r\n{body}"
    return raw.encode()


MESSAGES = {f"m{i:03d}": message(i) for i in range(COUNT + 5)}  # m300..m304: delivered later, in some scenarios
FIRST = [f"m{i:03d}" for i in range(COUNT)]


def lf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n")


def key_of(data: bytes) -> str:
    m = KEY.search(data)
    assert m is not None, data[:300]
    return m.group(1).decode()


# -- the server -------------------------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def pop3_server(data_dir: Path, **pop3: Any) -> AsyncIterator[RunningServer]:
    """The server with IMAP, POP3 on a plain port (STLS) and an implicit-TLS port, and alice's 300 messages."""
    overrides = {"imap": {"enabled": True}, "pop3": {"tls_port": free_port(), **pop3}}
    async with running_server(data_dir, overrides) as srv:
        await srv.services.users.create("alice", "pw", address=ADDRESS)
        await deliver(srv, FIRST)
        yield srv


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with pop3_server(tmp_path / "data", max_messages=1000) as srv:
        yield srv


async def deliver(srv: RunningServer, keys: Iterable[str]) -> None:
    """Deliver the messages in order (message number n is the n-th delivered)."""
    recipients = [await srv.services.delivery.resolve(ADDRESS)]
    for key in keys:
        [outcome] = await srv.services.delivery.deliver(MESSAGES[key], recipients)
        assert isinstance(outcome, AppendResult), outcome


def cert(srv: RunningServer) -> Path:
    return srv.services.config.data_dir / "tls-selfsigned-cert.pem"


async def stored_ids(srv: RunningServer) -> dict[str, str]:
    """Subject (= key) -> stored message id, for INBOX: what UIDL lists."""
    user = await srv.services.users.find("alice")
    inbox = await srv.services.mailboxes.get(user.id, "INBOX")
    return {m.subject: m.id for m in await srv.services.messages.summaries(inbox.id)}


def mailboxes(srv: RunningServer) -> dict[str, dict[str, tuple[bool, bytes]]]:
    """Through IMAP: mailbox -> key -> (\\Seen, content), for INBOX and Trash."""
    c = imapclient.IMAPClient(*srv.address("imap"), ssl=False)
    c.login("alice", "pw")
    state: dict[str, dict[str, tuple[bool, bytes]]] = {}
    for box in ("INBOX", "Trash"):
        exists = c.select_folder(box, readonly=True)[b"EXISTS"]
        items = c.fetch(c.search(["ALL"]), ["FLAGS", "BODY.PEEK[]"]).values() if exists else []
        state[box] = {key_of(d[b"BODY[]"]): (b"\\Seen" in d[b"FLAGS"], d[b"BODY[]"]) for d in items}
        assert len(state[box]) == exists
    c.logout()
    return state


async def check_server(srv: RunningServer, *, seen: Iterable[str] = (), unseen: Iterable[str] = (),
                       trash: Iterable[str] = ()) -> None:
    """INBOX holds exactly ``seen`` (\\Seen) and ``unseen`` (not), Trash exactly ``trash`` (all \\Seen); every
    message byte for byte as delivered."""
    state = await trio.to_thread.run_sync(mailboxes, srv)
    want = {k: True for k in seen} | {k: False for k in unseen}
    assert {k: s for k, (s, _) in state["INBOX"].items()} == want
    assert {k: s for k, (s, _) in state["Trash"].items()} == dict.fromkeys(trash, True)
    for box in state.values():
        for key, (_, content) in box.items():
            assert content == MESSAGES[key], key


# -- what the clients stored ------------------------------------------------------------------------------------------

_FETCHMAIL_RECEIVED = re.compile(
    rb"Received: from 127\.0\.0\.1 \[127\.0\.0\.1\]\n"
    rb"\tby \S+ with POP3 \(fetchmail-[\d.]+\)\n"
    rb"\tfor <[^>\n]+> \(single-drop\); [^\n]+\n")
_GETMAIL_ADDED = re.compile(
    rb"Return-Path: <unknown>\n"
    rb"Delivered-To: unknown\n"
    rb"Received: from 127\.0\.0\.1 \(127\.0\.0\.1:\d+\) by \S+ with POP3 getmail6\n"
    rb"  msgid:(?P<uidl>[!-~]+); [^\n]+\n")
_MPOP_ADDED = re.compile(
    rb"From MAILER-DAEMON [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"
    rb"Received: from 127\.0\.0\.1 \(\S+ \[127\.0\.0\.1\]\)\n"
    rb"\tby \S+ \(mpop-[\d.]+\) with POP3\n"
    rb"\tfor <[^>\n]+>; [^\n]+\n")


def mboxrd(raw: bytes) -> bytes:
    """``raw`` with LF line ends and mboxrd quoting, as mpop writes a message into an mbox."""
    return re.sub(rb"(?m)^(>*From )", rb">\1", lf(raw))


def strip_fetchmail(data: bytes) -> tuple[bytes, str | None]:
    m = _FETCHMAIL_RECEIVED.match(data)
    assert m is not None, data[:300]
    return data[m.end():], None


def strip_getmail(data: bytes) -> tuple[bytes, str | None]:
    m = _GETMAIL_ADDED.match(data)
    assert m is not None, data[:300]
    return data[m.end():], m.group("uidl").decode()


def files(directory: Path) -> list[bytes]:
    return [f.read_bytes() for f in sorted(directory.iterdir())] if directory.exists() else []


Local = dict[str, tuple[bytes, str | None]]  # key -> (content, the UIDL if the client wrote it into the message)


def from_files(directory: Path, strip: Callable[[bytes], tuple[bytes, str | None]]) -> Local:
    """What an MDA stored, one file per message: key -> (content with the client's additions removed, UIDL if the
    client named it)."""
    out: Local = {}
    for data in files(directory):
        key = key_of(data)
        assert key not in out, f"{key} delivered twice"
        out[key] = strip(data)
    return out


def from_mbox(path: Path) -> Local:
    """mpop's mbox: key -> (the message as stored, after the From line and the Received header, None)."""
    out: Local = {}
    data = path.read_bytes() if path.exists() else b""
    for entry in re.split(rb"(?m)^(?=From )", data):
        if not entry:
            continue
        m = _MPOP_ADDED.match(entry)
        assert m is not None, entry[:300]
        assert entry.endswith(b"\n\n"), entry[-100:]
        content = entry[m.end():-1]
        key = key_of(content)
        assert key not in out, f"{key} delivered twice"
        out[key] = (content, None)
    return out


def check_local(got: Local, keys: Iterable[str], ids: dict[str, str] | None = None,
                *, expect: Callable[[bytes], bytes] = lf) -> None:
    """The client holds exactly ``keys``, each ``expect(<the delivered message>)`` (by default: with LF line ends);
    UIDLs the client recorded are the stored message ids."""
    keys = list(keys)
    assert sorted(got) == sorted(keys)
    for key in keys:
        content, uidl = got[key]
        assert content == expect(MESSAGES[key]), key
        if uidl is not None and ids is not None:
            assert uidl == ids[key], key


# -- the clients ------------------------------------------------------------------------------------------------------

def save_script(tmp_path: Path, name: str, *, block_after: int | None = None) -> tuple[Path, Path]:
    """An MDA that stores each message (stdin) as a new file in ``<tmp>/<name>``; with ``block_after``, it creates
    ``<tmp>/<name>.blocked`` and hangs once that many messages are stored. Returns (script, directory)."""
    directory = tmp_path / name
    directory.mkdir()
    script = tmp_path / f"{name}.sh"
    text = f'#!/bin/sh\ncat > "$(mktemp {directory}/m.XXXXXXXX)" || exit 75\n'
    if block_after is not None:
        text += (f'if [ "$(ls {directory} | wc -l)" -ge {block_after} ]; then\n'
                 f"  : > {tmp_path}/{name}.blocked\n  exec sleep 300\nfi\n")
    script.write_text(text)
    script.chmod(0o755)
    return script, directory


def keep_log(tmp_path: Path, client: str, output: str) -> str:
    """Append a run's output (the protocol trace) to ``<tmp>/<client>.log``, for a look after a failure."""
    with open(tmp_path / f"{client}.log", "a") as f:
        f.write(output + "\n=== end of run\n")
    return output


class Fetchmail:
    def __init__(self, tmp_path: Path, srv: RunningServer) -> None:
        self.binary = client_binary("fetchmail", "fetchmail")
        self.tmp = tmp_path
        self.srv = srv
        self.home = tmp_path / "fetchmail-home"
        self.home.mkdir(exist_ok=True)

    def rc(self, name: str, mda: Path, *, keep: bool, tls: str | None = None, options: str = "",
           server_options: str = "") -> Path:
        """A run control file; ``tls``: None (plain, no STLS), "implicit" (the TLS port) or "stls"."""
        port = self.srv.address("pop3s" if tls == "implicit" else "pop3")[1]
        trust = f'sslcertck sslcertfile "{cert(self.srv)}" sslcommonname "localhost"'
        security = {None: 'sslproto ""', "implicit": f"ssl {trust}", "stls": f'sslproto "TLS1.2+" {trust}'}[tls]
        rc = self.tmp / f"{name}.fetchmailrc"
        rc.write_text(f"poll 127.0.0.1 service {port} protocol pop3 {server_options}\n"
                      f'  user "alice" there with password "pw"\n  {security}\n'
                      f'  {"keep" if keep else "no keep"} {options}\n  mda "{mda}"\n')
        rc.chmod(0o600)  # fetchmail refuses a run control file others may read
        return rc

    def command(self, rc: Path, idfile: str) -> list[str]:
        return [self.binary, "-f", str(rc), "-v", "--nosyslog", "--idfile", str(self.tmp / idfile),
                "--pidfile", str(self.home / "pid")]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "FETCHMAILHOME": str(self.home)}

    def run(self, rc: Path, idfile: str, *, new: bool) -> str:
        """One poll; ``new``: whether it must find mail (exit 0) or none (exit 1, "no mail")."""
        proc = subprocess.run(self.command(rc, idfile), capture_output=True, text=True, timeout=120, env=self.env)
        out = keep_log(self.tmp, "fetchmail", proc.stdout + proc.stderr)
        assert proc.returncode == (0 if new else 1), out[-3000:]
        return out


class Getmail:
    def __init__(self, tmp_path: Path, srv: RunningServer) -> None:
        self.binary = client_binary("getmail", "getmail6")
        self.tmp = tmp_path
        self.srv = srv

    def rc(self, name: str, mda: Path, *, delete: bool) -> Path:
        getmaildir = self.tmp / f"{name}.getmail"
        getmaildir.mkdir()
        rc = getmaildir / "getmailrc"
        # as root, getmail refuses Maildir and mbox delivery (unless [destination] user names another user that may
        # write there); an external MDA runs as root with allow_root_commands
        rc.write_text(f"[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
                      f"port = {self.srv.address('pop3')[1]}\nusername = alice\npassword = pw\n\n"
                      f"[destination]\ntype = MDA_external\npath = {mda}\nallow_root_commands = true\n\n"
                      f"[options]\nread_all = false\ndelete = {str(delete).lower()}\nverbose = 1\n")
        return rc

    def run(self, rc: Path, *, new: int) -> str:
        proc = subprocess.run([self.binary, "--getmaildir", str(rc.parent), "--rcfile", str(rc)],
                              capture_output=True, text=True, timeout=120)
        out = keep_log(self.tmp, "getmail", proc.stdout + proc.stderr)
        assert proc.returncode == 0, out[-3000:]
        assert re.search(rf"^\s*{new} messages? \(\d+ bytes\) retrieved", out, re.MULTILINE), out[-3000:]
        return out


class Mpop:
    def __init__(self, tmp_path: Path, srv: RunningServer) -> None:
        self.binary = client_binary("mpop", "mpop")
        self.tmp = tmp_path
        self.srv = srv

    def command(self, uidls: str, delivery: str, *, keep: bool, tls: str | None = None, trust: bool = True,
                auth: str = "user") -> list[str]:
        port = self.srv.address("pop3s" if tls == "implicit" else "pop3")[1]
        security = {None: ["--tls=off"], "implicit": ["--tls=on", "--tls-starttls=off"],
                    "stls": ["--tls=on", "--tls-starttls=on"]}[tls]
        if tls is not None:
            security.append(f"--tls-trust-file={cert(self.srv)}" if trust else "--tls-certcheck=off")
        return [self.binary, "--host=127.0.0.1", f"--port={port}", *security, f"--auth={auth}", "--user=alice",
                "--passwordeval=echo pw", f"--keep={'on' if keep else 'off'}", f"--delivery={delivery}",
                f"--uidls-file={self.tmp / uidls}", "--debug"]

    def run(self, uidls: str, mbox: str, *, keep: bool, tls: str | None = None, trust: bool = True,
            auth: str = "user") -> str:
        cmd = self.command(uidls, f"mbox,{self.tmp / mbox}", keep=keep, tls=tls, trust=trust, auth=auth)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env={**os.environ, "HOME": str(self.tmp)})
        out = keep_log(self.tmp, "mpop", proc.stdout + proc.stderr)
        assert proc.returncode == 0, out[-3000:]
        return out

    def uidls(self, name: str) -> set[str]:
        """The UIDs mpop recorded (its uidls file: comments, " count host user" headers, one UID a line)."""
        return {line for line in (self.tmp / name).read_text().splitlines()
                if line and not line.startswith(("#", " "))}


def commands(transcript: str, prefix: str) -> list[str]:
    """The command names a client sent, from its protocol trace (``prefix`` marks a sent line)."""
    return [line[len(prefix):].split(" ")[0] for line in transcript.splitlines() if line.startswith(prefix)]


# -- scenarios --------------------------------------------------------------------------------------------------------

CLIENTS = ["fetchmail", "getmail", "mpop"]


@pytest.mark.parametrize("client", CLIENTS)
async def test_keep_on_server(server: RunningServer, tmp_path: Path, client: str) -> None:
    """Download keeping mail: all 300 arrive as delivered and become \\Seen; a second run finds nothing new
    (UIDL); 5 messages delivered later are exactly what a third run gets."""
    later = [f"m{i:03d}" for i in range(COUNT, COUNT + 5)]
    ids = await stored_ids(server)
    with trio.fail_after(120):
        if client == "fetchmail":
            fm = Fetchmail(tmp_path, server)
            mda, out = save_script(tmp_path, "got")
            rc = fm.rc("keep", mda, keep=True)  # keep without "uidl": fetchmail uses RETR (with "uidl", TOP)
            log = await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=True))
            assert commands(log, "fetchmail: POP3> ").count("RETR") == COUNT
            got = from_files(out, strip_fetchmail)
            recorded = (tmp_path / "ids").read_text()
            assert all(ids[k] in recorded for k in FIRST)
        elif client == "getmail":
            gm = Getmail(tmp_path, server)
            mda, out = save_script(tmp_path, "got")
            rc = gm.rc("keep", mda, delete=False)
            await trio.to_thread.run_sync(lambda: gm.run(rc, new=COUNT))
            got = from_files(out, strip_getmail)
        else:
            mp = Mpop(tmp_path, server)
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "got.mbox", keep=True))
            assert commands(log, "--> ").count("RETR") == COUNT
            got = from_mbox(tmp_path / "got.mbox")
            assert mp.uidls("uidls") == {ids[k] for k in FIRST}
        check_local(got, FIRST, ids, expect=mboxrd if client == "mpop" else lf)
        await check_server(server, seen=FIRST)

        # again: nothing new
        if client == "fetchmail":
            log = await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=False))
            assert "RETR" not in commands(log, "fetchmail: POP3> ")
            assert len(files(out)) == COUNT
        elif client == "getmail":
            await trio.to_thread.run_sync(lambda: gm.run(rc, new=0))
            assert len(files(out)) == COUNT
        else:
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "got.mbox", keep=True))
            assert "RETR" not in commands(log, "--> ")
            assert len(from_mbox(tmp_path / "got.mbox")) == COUNT
        await check_server(server, seen=FIRST)

        # five more: only they are new
        await deliver(server, later)
        ids = await stored_ids(server)
        if client == "fetchmail":
            await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=True))
            got = from_files(out, strip_fetchmail)
        elif client == "getmail":
            await trio.to_thread.run_sync(lambda: gm.run(rc, new=len(later)))
            got = from_files(out, strip_getmail)
        else:
            await trio.to_thread.run_sync(lambda: mp.run("uidls", "got.mbox", keep=True))
            got = from_mbox(tmp_path / "got.mbox")
        check_local(got, FIRST + later, ids, expect=mboxrd if client == "mpop" else lf)
        await check_server(server, seen=FIRST + later)


@pytest.mark.parametrize("client", CLIENTS)
async def test_delete_from_server(server: RunningServer, tmp_path: Path, client: str) -> None:
    """Download deleting mail: all 300 arrive as delivered; INBOX is empty, Trash holds them, \\Seen, unchanged."""
    ids = await stored_ids(server)
    with trio.fail_after(120):
        if client == "fetchmail":
            fm = Fetchmail(tmp_path, server)
            mda, out = save_script(tmp_path, "got")
            rc = fm.rc("delete", mda, keep=False)
            log = await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=True))
            sent = commands(log, "fetchmail: POP3> ")
            assert sent.count("DELE") == COUNT and sent[-1] == "QUIT"
            got = from_files(out, strip_fetchmail)
        elif client == "getmail":
            gm = Getmail(tmp_path, server)
            mda, out = save_script(tmp_path, "got")
            rc = gm.rc("delete", mda, delete=True)
            await trio.to_thread.run_sync(lambda: gm.run(rc, new=COUNT))
            got = from_files(out, strip_getmail)
        else:
            mp = Mpop(tmp_path, server)
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "got.mbox", keep=False))
            assert commands(log, "--> ").count("DELE") == COUNT
            got = from_mbox(tmp_path / "got.mbox")
        check_local(got, FIRST, ids, expect=mboxrd if client == "mpop" else lf)
        await check_server(server, trash=FIRST)

        # nothing is left to get
        if client == "fetchmail":
            await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=False))
        elif client == "getmail":
            await trio.to_thread.run_sync(lambda: gm.run(rc, new=0))
        else:
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "got.mbox", keep=False))
            assert "RETR" not in commands(log, "--> ")
        await check_server(server, trash=FIRST)


@pytest.mark.parametrize("client", ["fetchmail", "mpop"])
async def test_tls(server: RunningServer, tmp_path: Path, client: str) -> None:
    """Over the implicit-TLS port keeping mail, then over STLS on the plain port deleting it, trusting the server's
    generated self-signed certificate (mpop's STLS run checks no certificate; its implicit-TLS run logs in with
    AUTH PLAIN)."""
    ids = await stored_ids(server)
    with trio.fail_after(120):
        if client == "fetchmail":
            fm = Fetchmail(tmp_path, server)
            mda, out = save_script(tmp_path, "implicit")
            log = await trio.to_thread.run_sync(
                lambda: fm.run(fm.rc("implicit", mda, keep=True, tls="implicit"), "ids-implicit", new=True))
            assert re.search(r"SSL/TLS: using protocol TLSv1\.[23]", log), log[:3000]
            assert "STLS" not in commands(log, "fetchmail: POP3> ")
            check_local(from_files(out, strip_fetchmail), FIRST, ids)
        else:
            mp = Mpop(tmp_path, server)
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls-implicit", "implicit.mbox", keep=True,
                                                               tls="implicit", auth="plain"))
            sent = commands(log, "--> ")
            assert "TLS session parameters:" in log and "STLS" not in sent
            assert sent[:2] == ["CAPA", "AUTH"] and "--> AUTH PLAIN" in log
            check_local(from_mbox(tmp_path / "implicit.mbox"), FIRST, ids, expect=mboxrd)
        await check_server(server, seen=FIRST)

        if client == "fetchmail":
            mda, out = save_script(tmp_path, "stls")
            log = await trio.to_thread.run_sync(
                lambda: fm.run(fm.rc("stls", mda, keep=False, tls="stls"), "ids-stls", new=True))
            assert "upgrade to TLS succeeded" in log, log[:3000]
            sent = commands(log, "fetchmail: POP3> ")
            assert sent[:2] == ["CAPA", "STLS"] and sent.count("DELE") == COUNT
            check_local(from_files(out, strip_fetchmail), FIRST, ids)
        else:
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls-stls", "stls.mbox", keep=False, tls="stls",
                                                               trust=False))
            sent = commands(log, "--> ")
            assert sent[:2] == ["CAPA", "STLS"] and "TLS session parameters:" in log
            assert sent.count("DELE") == COUNT
            check_local(from_mbox(tmp_path / "stls.mbox"), FIRST, ids, expect=mboxrd)
        await check_server(server, trash=FIRST)


async def test_fetchmail_uidl_peeks_with_top(server: RunningServer, tmp_path: Path) -> None:
    """fetchmail's ``keep uidl`` fetches with ``TOP n 99999999`` so as not to mark mail seen: the whole message
    arrives, nothing becomes \\Seen, and UIDL alone keeps the next run from fetching it again."""
    ids = await stored_ids(server)
    fm = Fetchmail(tmp_path, server)
    mda, out = save_script(tmp_path, "got")
    rc = fm.rc("peek", mda, keep=True, server_options="uidl")
    with trio.fail_after(120):
        log = await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=True))
        sent = commands(log, "fetchmail: POP3> ")
        assert sent.count("TOP") == COUNT and "RETR" not in sent
        check_local(from_files(out, strip_fetchmail), FIRST, ids)
        await check_server(server, unseen=FIRST)
        log = await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=False))
        assert "TOP" not in commands(log, "fetchmail: POP3> ")
        assert len(files(out)) == COUNT
        await check_server(server, unseen=FIRST)


@pytest.mark.parametrize("client", ["fetchmail", "mpop"])
async def test_interrupted_download_changes_nothing(server: RunningServer, tmp_path: Path, client: str) -> None:
    """The client is killed (SIGKILL) while its MDA holds message 100: it never sent QUIT, so nothing it
    retrieved (RETR) or deleted (DELE, fetchmail) is changed on the server. A complete run afterwards gets all 300."""
    stop_at = 100
    mda, out = save_script(tmp_path, "got", block_after=stop_at)
    if client == "fetchmail":
        fm = Fetchmail(tmp_path, server)
        # fetchall makes fetchmail use RETR; without keep it sends DELE after each message it delivered
        cmd, env = fm.command(fm.rc("killed", mda, keep=False, options="fetchall"), "ids"), fm.env
        prefix = "fetchmail: POP3> "
    else:
        mp = Mpop(tmp_path, server)
        cmd, env = mp.command("uidls", f"mda,{mda}", keep=False), {**os.environ, "HOME": str(tmp_path)}
        prefix = "--> "
    def start() -> subprocess.Popen[bytes]:
        with open(tmp_path / "transcript", "wb") as transcript:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=transcript, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)

    alice = await server.services.users.find("alice")
    with trio.fail_after(120):
        proc = await trio.to_thread.run_sync(start)
        try:
            while not (tmp_path / "got.blocked").exists():
                assert proc.poll() is None, (tmp_path / "transcript").read_text()[-3000:]
                await trio.sleep(0.05)
            assert await server.services.login.connections(alice, "pop3") == 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the client and its hanging MDA
            await trio.to_thread.run_sync(proc.wait)
        while await server.services.login.connections(alice, "pop3"):  # noqa: ASYNC110 - the server's session ends
            await trio.sleep(0.05)
    sent = commands((tmp_path / "transcript").read_text(), prefix)
    assert sent.count("RETR") >= stop_at and "QUIT" not in sent
    if client == "fetchmail":
        assert sent.count("DELE") == stop_at - 1  # the 100th is being delivered
    assert len(files(out)) == stop_at
    await check_server(server, unseen=FIRST)

    # a complete run: the server serves it all again
    ids = await stored_ids(server)
    mda, out = save_script(tmp_path, "again")
    with trio.fail_after(120):
        if client == "fetchmail":
            rc = fm.rc("again", mda, keep=False, options="fetchall")
            await trio.to_thread.run_sync(lambda: fm.run(rc, "ids", new=True))
            check_local(from_files(out, strip_fetchmail), FIRST, ids)
        else:
            await trio.to_thread.run_sync(lambda: mp.run("uidls", "again.mbox", keep=False))
            check_local(from_mbox(tmp_path / "again.mbox"), FIRST, ids, expect=mboxrd)
    await check_server(server, trash=FIRST)


async def test_default_lists_newest_250(tmp_path: Path) -> None:
    """With the default ``[pop3] max_messages`` (250) a session sees the newest 250 of the 300: mpop gets m050-m299
    and marks them \\Seen; deleting them (to Trash) uncovers the oldest 50 for the next session."""
    newest, oldest = FIRST[-250:], FIRST[:-250]
    async with pop3_server(tmp_path / "data") as srv:
        mp = Mpop(tmp_path, srv)
        ids = await stored_ids(srv)
        with trio.fail_after(120):
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "keep.mbox", keep=True))
            assert "+OK logged in, 250 messages" in log
            check_local(from_mbox(tmp_path / "keep.mbox"), newest, ids, expect=mboxrd)
            await check_server(srv, seen=newest, unseen=oldest)

            # deleting: mpop deletes what it fetched before too; the oldest 50 appear in the next session
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "delete.mbox", keep=False))
            assert "RETR" not in commands(log, "--> ") and commands(log, "--> ").count("DELE") == 250
            await check_server(srv, unseen=oldest, trash=newest)
            log = await trio.to_thread.run_sync(lambda: mp.run("uidls", "delete.mbox", keep=False))
            assert "+OK logged in, 50 messages" in log
            check_local(from_mbox(tmp_path / "delete.mbox"), oldest, ids, expect=mboxrd)
            await check_server(srv, trash=FIRST)
