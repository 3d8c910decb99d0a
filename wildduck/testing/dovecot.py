"""A private Dovecot (Debian's ``dovecot-imapd``, and ``dovecot-pop3d`` for POP3) for the FETCH and POP3 oracles
and the IMAP and POP3 benchmarks.

The instance lives entirely under one directory (its own base_dir, state_dir, log, passwd file, maildir) and
listens on a free loopback port with plain IMAP, and with ``protocols="imap pop3"`` on a second free loopback port
with plain POP3 (no implicit-TLS listener for either); nothing of the system's Dovecot is read or changed. Run as
root, the login and auth processes use the package's unprivileged accounts and mail belongs to the ``dovecot``
account; otherwise everything runs as the current user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wildduck.testing.server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

#: settings for speed (the benchmark's baseline): long-lived login processes, pre-forked imap processes
SPEED = """\
info_log_path = /dev/null
service imap-login {{
  service_count = 0
  process_min_avail = 2
}}
service imap {{
  process_min_avail = 2
}}
"""

#: the same for POP3 (added with SPEED when POP3 is served): long-lived pop3-login, pre-forked pop3 processes
SPEED_POP3 = """\
service pop3-login {{
  service_count = 0
  process_min_avail = 2
}}
service pop3 {{
  process_min_avail = 2
}}
"""

#: POP3 (added when POP3 is served): plain POP3 on its own port, no pop3s; UIDLs as Dovecot's documented
#: default (UID and UIDVALIDITY in hex), spelt out so that the recorded shape does not depend on the package
POP3 = """\
pop3_uidl_format = %08Xu%08Xv
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
{chroot}}}
"""

#: LMTP (added when LMTP is served): on its own port; the recipient ``user@example.com`` is the same account as
#: ``user`` (a second passwd line with the same home), and bounces would name this postmaster
LMTP = """\
postmaster_address = postmaster@example.com
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
"""

#: the same for LMTP: pre-forked lmtp processes that serve many connections each
SPEED_LMTP = """\
service lmtp {{
  process_min_avail = 2
  service_count = 0
}}
"""

#: the protocols ``private_dovecot`` can serve
PROTOCOLS = frozenset({"imap", "pop3", "lmtp"})

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
instance_name = wildduck-private-{port}
{users}protocols = {protocols}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dir}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
{chroot}}}
service auth {{
{chroot}}}
service anvil {{
{chroot}}}
"""


@dataclass(frozen=True)
class PrivateDovecot:
    port: int  # IMAP
    pid: int
    directory: Path
    pop3_port: int | None = None  # POP3, when served
    lmtp_port: int | None = None  # LMTP, when served

    @property
    def log(self) -> Path:
        return self.directory / "dovecot.log"


def version(binary: str = DOVECOT) -> str:
    return subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def private_dovecot(directory: Path, user: str, password: str, *, binary: str = DOVECOT,
                    speed: bool = False, protocols: str = "imap") -> Iterator[PrivateDovecot]:
    """Run Dovecot in the foreground under ``directory`` with one user until the block ends.

    ``protocols`` is Dovecot's setting of that name: ``"imap"`` plus any of ``pop3`` and ``lmtp`` (IMAP is always
    served: it is how callers fill the mailbox). ``speed`` adds the benchmark settings for every protocol served.
    LMTP delivers to ``user@example.com``.
    """
    served = protocols.split()
    if "imap" not in served or not set(served) <= PROTOCOLS or len(set(served)) != len(served):
        raise ValueError(f"protocols must be 'imap' plus any of 'pop3' and 'lmtp', not {protocols!r}")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)  # the unprivileged login and auth processes read the passwd file and reach the sockets
    if os.geteuid() == 0:
        account = pwd.getpwnam("dovecot")
        uid, gid, users, chroot = account.pw_uid, account.pw_gid, "", ""
    else:  # Dovecot cannot change users: everything runs as us, without chroot
        me = pwd.getpwuid(os.geteuid()).pw_name
        uid, gid = os.geteuid(), os.getegid()
        users, chroot = f"default_login_user = {me}\ndefault_internal_user = {me}\n", "  chroot =\n"
    home = directory / "home" / user
    home.mkdir(parents=True, exist_ok=True)
    for path in (home.parent, home):
        os.chown(path, uid, gid)
    entry = f":{{PLAIN}}{password}:{uid}:{gid}::{home}::\n"
    (directory / "passwd").write_text(user + entry + (f"{user}@example.com" + entry if "lmtp" in served else ""))
    (directory / "passwd").chmod(0o644)
    port = free_port()  # successive calls never repeat a port
    pop3_port = free_port() if "pop3" in served else None
    lmtp_port = free_port() if "lmtp" in served else None
    config = directory / "dovecot.conf"
    text = CONFIG.format(dir=directory, port=port, users=users, chroot=chroot, protocols=" ".join(served))
    if pop3_port is not None:
        text += POP3.format(pop3_port=pop3_port, chroot=chroot)
    if lmtp_port is not None:
        text += LMTP.format(lmtp_port=lmtp_port)
    if speed:
        text += SPEED.format() + (SPEED_POP3.format() if pop3_port is not None else "")
        text += SPEED_LMTP.format() if lmtp_port is not None else ""
    config.write_text(text)
    proc = subprocess.Popen([binary, "-F", "-c", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_greeting(port, proc, directory / "dovecot.log")
        if pop3_port is not None:
            _wait_for_greeting(pop3_port, proc, directory / "dovecot.log", greeting=b"+OK")
        if lmtp_port is not None:
            _wait_for_greeting(lmtp_port, proc, directory / "dovecot.log", greeting=b"220 ")
        if speed:
            time.sleep(0.5)  # let process_min_avail finish forking
        yield PrivateDovecot(port, proc.pid, directory, pop3_port, lmtp_port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_greeting(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0,
                       greeting: bytes = b"* OK") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(greeting):
                    return
        except OSError:
            time.sleep(0.1)
    text = log.read_text()[-3000:] if log.exists() else ""
    raise RuntimeError(f"dovecot did not answer on port {port} (exit status {proc.poll()}):\n{text}")
