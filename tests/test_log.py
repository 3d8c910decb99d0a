"""Log lines an administrator can use: one connection id and the user in every line, text or JSON, to a file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from wildduck.log import connection_id, connection_user, reopen_log_files, setup_logging


def test_json_lines_carry_the_connection_and_the_user(tmp_path: Path) -> None:
    path = tmp_path / "wd.log"
    setup_logging("info", fmt="json", file=str(path))
    try:
        log = logging.getLogger("wildduck.test")
        log.info("outside")
        connection_id.set("imap#7")
        connection_user.set("alice")
        log.warning("inside %s", "a connection")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        connection_id.set("")
        connection_user.set("")
        path.rename(tmp_path / "wd.log.1")  # logrotate
        reopen_log_files()
        log.info("after rotation")
    finally:
        setup_logging("info")
    first = [json.loads(line) for line in (tmp_path / "wd.log.1").read_text().splitlines()]
    assert first[0]["message"] == "outside" and "connection" not in first[0]
    assert first[1] == {**first[1], "connection": "imap#7", "user": "alice", "level": "warning",
                        "message": "inside a connection", "logger": "wildduck.test"}
    assert "ValueError: boom" in first[2]["error"]
    assert [json.loads(line)["message"] for line in path.read_text().splitlines()] == ["after rotation"]


def test_text_lines_name_the_connection(tmp_path: Path) -> None:
    path = tmp_path / "wd.log"
    setup_logging("info", file=str(path))
    try:
        connection_id.set("lmtp#3")
        logging.getLogger("wildduck.test").info("hello")
        connection_id.set("")
    finally:
        setup_logging("info")
    assert path.read_text().rstrip().endswith("INFO wildduck.test [lmtp#3]: hello")
