from __future__ import annotations

from pathlib import Path

import pytest

from wildduck.config import load_config
from wildduck.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wildduck.toml"
    path.write_text(text)
    return path


def test_defaults_bind_loopback_on_the_documented_ports() -> None:
    c = load_config()
    assert (c.imap.host, c.imap.port, c.imap.tls_port) == ("127.0.0.1", 9143, 9993)
    assert (c.pop3.port, c.pop3.tls_port) == (9110, 9995)
    assert (c.lmtp.host, c.lmtp.port, c.api.port) == ("127.0.0.1", 2424, 8080)
    assert c.store.backend == "sqlite" and c.server.data_dir == "./data"
    assert c.store.synchronous == "full"


def test_file_is_merged_over_the_defaults(tmp_path: Path) -> None:
    c = load_config(write(tmp_path, '[lmtp]\nport = 2525\n[limits]\nidle_timeout = 30\n'))
    assert c.lmtp.port == 2525 and c.lmtp.host == "127.0.0.1"
    assert c.limits.idle_timeout == 30.0 and isinstance(c.limits.idle_timeout, float)
    assert c.sources[-1].endswith("wildduck.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[lmtp]\nprot = 1\n", "unknown key [lmtp] prot"),
        ("[nonsense]\nx = 1\n", "unknown section [nonsense]"),
        ('[lmtp]\nport = "2424"\n', "[lmtp] port: expected an integer, got str"),
        ("[lmtp]\nenabled = 1\n", "[lmtp] enabled: expected a boolean"),
        ("[lmtp]\nport = 70000\n", "[lmtp] port: not a TCP port"),
        ('[store]\nsynchronous = "off"\n', "[store] synchronous: must be one of"),
        ("[limits]\nmax_message_size = -1\n", "[limits] max_message_size: must not be negative"),
        ("[lmtp\n", "invalid TOML"),
        ('[tls]\ncert = "a.pem"\n', "[tls] cert and key must be set together"),
    ],
)
def test_bad_files_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "nope.toml")
