"""IMAP transcripts (tests/transcripts/imap/*.txt) against the whole server over a socket, on each deployment; see
``wildduck/testing/transcript.py`` for the format."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.deployments import Deployment
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import running_server
from wildduck.testing.transcript import Runner, TranscriptFailure, load, parse

HERE = Path(__file__).parent / "imap"
TRANSCRIPTS = sorted(HERE.glob("*.txt"))


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
async def test_transcript(path: Path, tmp_path: Path, deployment: Deployment) -> None:
    async with running_server(tmp_path, deployment.overrides({"imap": {"enabled": True}})) as srv:
        for name in ("alice", "bob"):
            await srv.services.users.create(name, "pw", address=f"{name}@example.com")

        def deliver(user: str, message: bytes) -> None:
            with LMTPClient(*srv.address("lmtp")) as c:
                c.lhlo()
                assert c.send_message("sender@example.net", [f"{user}@example.com"], message)[1][0][0] == 250

        runner = Runner(srv.address("imap"), deliver)
        await trio.to_thread.run_sync(runner.run, load(path), path.name)


def test_the_runner_fails_on_a_wrong_line() -> None:
    """The runner is strict: a line that differs fails the transcript, naming the line."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(b"* OK hi\r\n")
        conn.recv(100)
        conn.sendall(b"a OK done 12\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    runner = Runner(server.getsockname()[:2], lambda user, msg: None, timeout=2)
    with pytest.raises(TranscriptFailure, match=r"t:3: expected"):
        runner.run("C: a NOOP\n# next line is wrong\nS: a OK done {{n:\\d+}} extra\n", "t")
    server.close()
    steps = parse("@deliver bob\nSubject: x\n\nbody\n@end\nC2: a NOOP \\\nS2: a OK {{$n}}\n")
    assert [(s.kind, s.connection) for s in steps] == [("deliver", 1), ("send", 2), ("expect", 2)]
    assert steps[0].message == b"Subject: x\r\n\r\nbody\r\n" and not steps[1].crlf
