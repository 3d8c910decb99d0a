"""A private Dovecot (Debian's ``dovecot-imapd``) for the FETCH oracle and the ImapTest benchmark.

The instance lives entirely under one directory (its own base_dir, state_dir, log, passwd file, maildir) and
listens on a free loopback port with plain IMAP; nothing of the system's Dovecot is read or changed. Run as root,
the login and auth processes use the package's unprivileged accounts and mail belongs to the ``dovecot`` account;
otherwise everything runs as the current user.
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

CONFIG = """\
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
instance_name = wildduck-private-{port}
{users}protocols = imap
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
    port: int
    pid: int
    directory: Path

    @property
    def log(self) -> Path:
        return self.directory / "dovecot.log"


def version(binary: str = DOVECOT) -> str:
    return subprocess.run([binary, "--version"], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def private_dovecot(directory: Path, user: str, password: str, *, binary: str = DOVECOT,
                    speed: bool = False) -> Iterator[PrivateDovecot]:
    """Run Dovecot in the foreground under ``directory`` with one user until the block ends."""
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
    (directory / "passwd").write_text(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n")
    (directory / "passwd").chmod(0o644)
    port = free_port()
    config = directory / "dovecot.conf"
    config.write_text(CONFIG.format(dir=directory, port=port, users=users, chroot=chroot)
                      + (SPEED.format() if speed else ""))
    proc = subprocess.Popen([binary, "-F", "-c", str(config)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_for_greeting(port, proc, directory / "dovecot.log")
        if speed:
            time.sleep(0.5)  # let process_min_avail finish forking
        yield PrivateDovecot(port, proc.pid, directory)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_greeting(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    text = log.read_text()[-3000:] if log.exists() else ""
    raise RuntimeError(f"dovecot did not answer on port {port} (exit status {proc.poll()}):\n{text}")
