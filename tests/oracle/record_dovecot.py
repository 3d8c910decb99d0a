"""Record Dovecot's FETCH answers as fixtures: the oracle of tests/protocols/imap/test_dovecot_oracle.py.

Run by hand, from the repository root, after installing Debian's Dovecot (``apt-get install dovecot-imapd``; the
package's own service is not used and need not run)::

    .venv/bin/python -m tests.oracle.record_dovecot            # record every message
    .venv/bin/python -m tests.oracle.record_dovecot nul-bytes  # only the messages named (file stems)

It starts a private Dovecot in a temporary directory (its own configuration, a maildir, one passwd-file user,
plaintext LOGIN on a free loopback port, no SSL, logs in the temporary directory; nothing of the system's Dovecot
or other services is touched), APPENDs each message (byte for byte, over ``imaplib``'s connection) to a mailbox of
its own, and FETCHes, one item per command, ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY.PEEK[],
BODY.PEEK[HEADER], BODY.PEEK[TEXT], BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)], BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)],
BODY.PEEK[]<10.20>, and for every part path n found in Dovecot's BODYSTRUCTURE (through message/rfc822 parts too)
BODY.PEEK[n] and BODY.PEEK[n.MIME], plus BODY.PEEK[n.HEADER] and BODY.PEEK[n.TEXT] for message/rfc822 parts, and
one part number past the last.

The messages: a selection of the shared corpus (``../shared/data/imaptest.mbox``, stored as ``corpus-NN.eml``,
NN its index in the mbox, line endings made CRLF) and the hand-written malformed ones in ``tests/oracle/messages/``.
For each message ``NAME`` it writes ``tests/oracle/fixtures/NAME.eml`` (the exact bytes appended) and
``NAME.json``::

    {"dovecot": "<dovecot --version>", "message": "NAME.eml", "append": "OK",
     "answers": [{"item": "BODY.PEEK[1]", "response": "BODY[1] {5}\\r\\nhello"}, ...]}

``response`` is the data between the parentheses of ``* 1 FETCH (...)``, every byte kept: the string is the bytes
decoded as latin-1. ``append`` is the status of the APPEND (a message Dovecot refuses has no answers).
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.corpus import MBOX, corpus, crlf
from tests.oracle import wire

HERE = Path(__file__).resolve().parent
MESSAGES = HERE / "messages"
FIXTURES = HERE / "fixtures"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "oracle", "oracle-pw"

#: indexes in the corpus mbox of the messages recorded (all of it but near duplicates: 48 messages, 65 KB)
CORPUS = [i for i in range(48) if i not in (8, 12, 20, 29)]

CONFIG = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
instance_name = wildduck-oracle
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {tmp}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={tmp}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_version() -> str:
    return subprocess.run([DOVECOT, "--version"], check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def private_dovecot() -> Iterator[tuple[int, Path]]:
    """A Dovecot master in the foreground, configured under a temporary directory; yields (port, directory)."""
    tmp = Path(tempfile.mkdtemp(prefix="dovecot-oracle-"))
    tmp.chmod(0o755)  # the unprivileged login/auth processes read the passwd file and reach the sockets
    if os.geteuid() == 0:  # the package's unprivileged accounts; mail stored as "dovecot"
        login_user, internal_user = "dovenull", "dovecot"
        uid, gid = pwd.getpwnam("dovecot").pw_uid, pwd.getpwnam("dovecot").pw_gid
    else:  # Dovecot cannot change users: everything runs as us
        login_user = internal_user = pwd.getpwuid(os.geteuid()).pw_name
        uid, gid = os.geteuid(), os.getegid()
    port = free_port()
    (tmp / "home" / USER).mkdir(parents=True)
    os.chown(tmp / "home", uid, gid)
    os.chown(tmp / "home" / USER, uid, gid)
    (tmp / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    (tmp / "passwd").chmod(0o644)
    conf = tmp / "dovecot.conf"
    conf.write_text(CONFIG.format(tmp=tmp, login_user=login_user, internal_user=internal_user, uid=uid, gid=gid,
                                  port=port))
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (tmp / "dovecot.log").read_text() if (tmp / "dovecot.log").exists() else ""
                    raise RuntimeError(f"dovecot did not start:\n{log}") from None
                time.sleep(0.1)
        yield port, tmp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def messages() -> dict[str, bytes]:
    """The message set: name → exact bytes appended."""
    out: dict[str, bytes] = {}
    mbox = corpus()
    assert len(mbox) == 48, f"unexpected corpus {MBOX}"
    for i in CORPUS:
        out[f"corpus-{i:02d}"] = crlf(mbox[i])
    for path in sorted(MESSAGES.glob("*.eml")):
        out[path.stem] = path.read_bytes()
    return out


def record(m: imaplib.IMAP4, name: str, message: bytes, version: str) -> dict[str, object]:
    mailbox = f"m-{name}"
    created = wire.command(m, f'CREATE "{mailbox}"'.encode())
    assert created.status == "OK", created.line
    appended = wire.append(m, mailbox, message)
    result: dict[str, object] = {"dovecot": version, "message": f"{name}.eml", "append": appended.status,
                                 "answers": []}
    if appended.status != "OK":
        return result
    selected = wire.command(m, f'EXAMINE "{mailbox}"'.encode())
    assert selected.status == "OK", selected.line
    structure = wire.fetch(m, 1, "BODYSTRUCTURE")
    result["answers"] = [{"item": item, "response": wire.fetch(m, 1, item).decode("latin-1")}
                         for item in wire.items_for(structure)]
    return result


def main(argv: list[str]) -> int:
    version = dovecot_version()
    chosen = messages()
    if argv:
        unknown = set(argv) - set(chosen)
        if unknown:
            print(f"unknown messages: {sorted(unknown)}", file=sys.stderr)
            return 2
        chosen = {k: v for k, v in chosen.items() if k in argv}
    FIXTURES.mkdir(exist_ok=True)
    with private_dovecot() as (port, _tmp):
        m = imaplib.IMAP4("127.0.0.1", port)
        m.login(USER, PASSWORD)
        total = 0
        for name, message in chosen.items():
            result = record(m, name, message, version)
            (FIXTURES / f"{name}.eml").write_bytes(message)
            (FIXTURES / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=True) + "\n")
            answers = result["answers"]
            assert isinstance(answers, list)
            total += len(answers)
            print(f"{name}: APPEND {result['append']}, {len(answers)} answers")
        m.logout()
    print(f"{len(chosen)} messages, {total} answers recorded from Dovecot {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
