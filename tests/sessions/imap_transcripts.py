"""What the IMAP extension tests (``test_imap_*.py``) share: a server with IMAP (POP3 off), a transcript runner that
delivers over LMTP, and the untagged lines of a SELECT/EXAMINE as a transcript expects them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import RunningServer, running_server
from wildduck.testing.transcript import Runner

#: the permanent flags of a mailbox whose messages carry no keyword
SYSTEM_FLAGS = r"\Answered \Flagged \Deleted \Seen \Draft"


@asynccontextmanager
async def imap_server(tmp_path: Path, *users: str, imap: dict[str, Any] | None = None,
                      **kwargs: Any) -> AsyncIterator[RunningServer]:
    """A running server with IMAP and LMTP (POP3 off) and the users named (password ``pw``, ``NAME@example.com``);
    ``kwargs`` go to :func:`running_server`."""
    config = {"imap": {"enabled": True, **(imap or {})}, "pop3": {"port": 0, "tls_port": 0}}
    async with running_server(tmp_path, config, **kwargs) as srv:
        for name in users:
            await srv.services.users.create(name, "pw", address=f"{name}@example.com")
        yield srv


def runner(srv: RunningServer) -> Runner:
    """A transcript runner against ``srv`` whose ``@deliver`` goes over LMTP."""
    def deliver(user: str, message: bytes) -> None:
        with LMTPClient(*srv.address("lmtp")) as c:
            c.lhlo()
            assert c.send_message("sender@example.net", [f"{user}@example.com"], message)[1][0][0] == 250

    return Runner(srv.address("imap"), deliver)


async def run(srv: RunningServer, text: str, name: str) -> None:
    """Run the transcript ``text`` against ``srv`` (in a thread: the runner's sockets block)."""
    await trio.to_thread.run_sync(runner(srv).run, text, name)


def selected(tag: str, *, exists: int, recent: int, uidnext: int, unseen: int | None = None,
             modseq: str = r"{{\d+}}", validity: str = r"{{\d+}}", readonly: bool = False) -> str:
    """The server's lines for ``tag SELECT`` (``EXAMINE`` if ``readonly``) of a mailbox without keywords."""
    lines = [f"S: * FLAGS ({SYSTEM_FLAGS})",
             f"S: * OK [PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)] flags permitted",
             f"S: * {exists} EXISTS", f"S: * {recent} RECENT"]
    if unseen is not None:
        lines.append(f"S: * OK [UNSEEN {unseen}] first unseen message")
    lines += [f"S: * OK [UIDVALIDITY {validity}] UIDs valid", f"S: * OK [UIDNEXT {uidnext}] predicted next UID",
              r"S: * OK [MAILBOXID ({{[0-9a-f]+}})] Ok",
              f"S: * OK [HIGHESTMODSEQ {modseq}] highest"]
    done = "[READ-ONLY] EXAMINE" if readonly else "[READ-WRITE] SELECT"
    lines.append(f"S: {tag} OK {done} completed")
    return "\n".join(lines) + "\n"
