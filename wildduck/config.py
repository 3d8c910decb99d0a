"""Typed configuration: TOML defaults shipped with the package, merged with the operator's file.

Unknown keys and wrong types stop the start with a :class:`~wildduck.errors.ConfigError` that names the key and
the file it came from.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from wildduck.errors import ConfigError

DEFAULTS_NAME = "wildduck/default.toml"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    hostname: str
    data_dir: str
    log_level: str
    log_format: str
    log_file: str
    shutdown_timeout: float
    email_domain: str
    workers: int


@dataclass(frozen=True, slots=True)
class TLSFiles:
    cert: str
    key: str


@dataclass(frozen=True, slots=True)
class StoreConfig:
    #: "sqlite" (this node) or "mongodb" (every instance that shares ``uri``)
    backend: str
    #: MongoDB connection string (with backend "mongodb"); the database is the one it names, else "wildduck"
    uri: str
    path: str
    synchronous: str
    readers: int
    fsync_all: bool


@dataclass(frozen=True, slots=True)
class PubSubConfig:
    #: "local" (this node) or "redis" (every instance that shares [redis])
    backend: str


@dataclass(frozen=True, slots=True)
class CountersConfig:
    #: "local" (this node) or "redis" (every instance that shares [redis])
    backend: str


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """The Redis server of [pubsub] and [counters] when either backend is "redis"."""

    url: str
    #: put before every key and channel name (instances that share it share counters and nudges)
    prefix: str
    #: seconds a Redis call may take (connecting, or waiting for an answer) before it fails
    timeout: float
    #: threads (and connections) for counter calls, per process
    threads: int


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_message_size: int
    default_quota: int
    max_recipients: int
    max_line_length: int
    idle_timeout: float
    send_timeout: float
    max_connections: int
    blob_grace_period: int
    auth_failures: int
    auth_failure_window: float


@dataclass(frozen=True, slots=True)
class LMTPConfig:
    enabled: bool
    host: str
    port: int
    starttls: bool
    cert: str
    key: str
    #: a PROXY protocol header (v1 or v2) starts every connection, sent by a load balancer in proxy_from
    proxy_protocol: bool
    #: the balancers' addresses or networks, separated by spaces or commas
    proxy_from: str


@dataclass(frozen=True, slots=True)
class MailProtocolConfig:
    """IMAP and POP3: a plain port with STARTTLS and an implicit-TLS port (0 disables it)."""

    enabled: bool
    host: str
    port: int
    tls_port: int
    starttls: bool
    cert: str
    key: str
    max_connections_per_user: int
    idle_timeout: float
    max_line_length: int
    #: as [lmtp]: a PROXY header from a balancer in proxy_from starts every connection
    proxy_protocol: bool
    proxy_from: str
    #: the balancer ended TLS (WildDuck's "secured"): the plain port's sessions count as encrypted
    tls_offloaded: bool


@dataclass(frozen=True, slots=True)
class POP3Config(MailProtocolConfig):
    #: the newest messages of INBOX a POP3 session sees (WildDuck: 250)
    max_messages: int


@dataclass(frozen=True, slots=True)
class APIConfig:
    """The HTTP API (WildDuck's paths and JSON shapes)."""

    enabled: bool
    host: str
    port: int
    tls: bool
    cert: str
    key: str
    #: true: every request needs a token (the root token below, or a user's from POST /authenticate)
    access_control: bool
    #: the root token as ``sha256:<64 hex digits>`` (its SHA-256), or the token itself; empty: no root token
    access_token: str
    #: seconds a user token lives unused (each use extends it) and seconds it lives at most
    token_ttl: float
    token_lifetime: float
    #: largest request body, in bytes
    max_body_size: int
    #: seconds an idle HTTP/1.1 keep-alive connection stays open
    keep_alive_timeout: float
    #: origins allowed by CORS, separated by spaces or commas; "*" allows any
    cors_origins: str


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig
    tls: TLSFiles
    store: StoreConfig
    pubsub: PubSubConfig
    counters: CountersConfig
    redis: RedisConfig
    limits: LimitsConfig
    lmtp: LMTPConfig
    imap: MailProtocolConfig
    pop3: POP3Config
    api: APIConfig
    metrics: MetricsConfig
    #: files merged to build this configuration, defaults first
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    def resolve_data_path(self, name: str) -> Path:
        """``name`` if absolute, else relative to the data directory."""
        path = Path(name)
        return path if path.is_absolute() else self.data_dir / path


#: most worker processes ``serve`` starts
MAX_WORKERS = 64

_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("server", "log_level"): ("debug", "info", "warning", "error"),
    ("server", "log_format"): ("text", "json"),
    ("store", "backend"): ("sqlite", "mongodb"),
    ("store", "synchronous"): ("full", "normal"),
    ("pubsub", "backend"): ("local", "redis"),
    ("counters", "backend"): ("local", "redis"),
}


def _type_name(tp: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _check_value(section: str, key: str, value: Any, tp: Any, origin: str) -> Any:
    where = f"{origin}: [{section}] {key}"
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if tp in (int, float) and value < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    if key in ("port", "tls_port") and not 0 <= value <= 65535:
        raise ConfigError(f"{where}: not a TCP port: {value!r}")
    if (section, key) == ("server", "workers") and not 1 <= value <= MAX_WORKERS:
        raise ConfigError(f"{where}: must be from 1 to {MAX_WORKERS}, got {value!r}")
    choices = _CHOICES.get((section, key))
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _merge(base: dict[str, dict[str, Any]], override: dict[str, Any], origin: str,
           origins: dict[tuple[str, str], str]) -> None:
    hints = typing.get_type_hints(Config)
    for section, values in override.items():
        if section not in base:
            raise ConfigError(f"{origin}: unknown section [{section}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table, got {type(values).__name__}")
        section_type = hints[section]
        section_hints = typing.get_type_hints(section_type)
        for key, value in values.items():
            if key not in section_hints:
                raise ConfigError(f"{origin}: unknown key [{section}] {key}")
            base[section][key] = _check_value(section, key, value, section_hints[key], origin)
            origins[(section, key)] = origin


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str] | None = None, *, overrides: dict[str, Any] | None = None) -> Config:
    """The defaults merged with the file at ``path`` (if any) and then with ``overrides`` (tests, CLI flags)."""
    defaults_text = resources.files("wildduck").joinpath("default.toml").read_text(encoding="utf-8")
    hints = typing.get_type_hints(Config)
    base: dict[str, dict[str, Any]] = {name: {} for name in hints if name != "sources"}
    origins: dict[tuple[str, str], str] = {}
    _merge(base, _read_toml(defaults_text, DEFAULTS_NAME), DEFAULTS_NAME, origins)
    sources = [DEFAULTS_NAME]
    if path is not None:
        origin = os.fspath(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read configuration: {exc.strerror}") from None
        _merge(base, _read_toml(text, origin), origin, origins)
        sources.append(origin)
    if overrides:
        _merge(base, overrides, "overrides", origins)
        sources.append("overrides")
    sections: dict[str, Any] = {}
    for name, values in base.items():
        section_type = hints[name]
        missing = [f.name for f in dataclasses.fields(section_type) if f.name not in values]
        if missing:
            raise ConfigError(f"{DEFAULTS_NAME}: [{name}] lacks {', '.join(missing)}")
        sections[name] = section_type(**values)
    config = Config(**sections, sources=tuple(sources))
    _check_consistency(config, origins)
    return config


def _check_consistency(config: Config, origins: dict[tuple[str, str], str]) -> None:
    for section in ("lmtp", "imap", "pop3", "api"):
        cfg = getattr(config, section)
        if bool(cfg.cert) != bool(cfg.key):
            origin = origins.get((section, "cert"), DEFAULTS_NAME)
            raise ConfigError(f"{origin}: [{section}] cert and key must be set together")
    if bool(config.tls.cert) != bool(config.tls.key):
        raise ConfigError(f"{origins.get(('tls', 'cert'), DEFAULTS_NAME)}: [tls] cert and key must be set together")
    for section in ("limits", "imap", "pop3"):
        if getattr(config, section).max_line_length < 512:
            origin = origins.get((section, "max_line_length"), DEFAULTS_NAME)
            raise ConfigError(f"{origin}: [{section}] max_line_length: must be at least 512")
    for section in ("limits", "imap", "pop3"):
        if getattr(config, section).idle_timeout <= 0:
            origin = origins.get((section, "idle_timeout"), DEFAULTS_NAME)
            raise ConfigError(f"{origin}: [{section}] idle_timeout: must be positive")
    if config.pop3.max_messages < 1:
        raise ConfigError(f"{origins.get(('pop3', 'max_messages'), DEFAULTS_NAME)}: [pop3] max_messages: "
                          "must be at least 1")
    _check_api(config.api, origins)
    _check_proxy(config, origins)
    _check_redis(config, origins)
    _check_store(config, origins)
    if config.limits.send_timeout <= 0:
        raise ConfigError(f"{origins.get(('limits', 'send_timeout'), DEFAULTS_NAME)}: [limits] send_timeout: "
                          "must be positive")


def _check_proxy(config: Config, origins: dict[tuple[str, str], str]) -> None:
    def where(section: str, key: str) -> str:
        return f"{origins.get((section, key), DEFAULTS_NAME)}: [{section}] {key}"

    for section in ("lmtp", "imap", "pop3"):
        cfg = getattr(config, section)
        if cfg.proxy_protocol:
            sources = split_list(cfg.proxy_from)
            if not sources:
                raise ConfigError(f"{where(section, 'proxy_from')}: proxy_protocol = true needs the balancers' "
                                  "addresses")
            for source in sources:
                try:
                    ipaddress.ip_network(source, strict=False)
                except ValueError:
                    raise ConfigError(f"{where(section, 'proxy_from')}: {source!r} is no address or network") from None
        if getattr(cfg, "tls_offloaded", False) and not cfg.proxy_protocol:
            raise ConfigError(f"{where(section, 'tls_offloaded')}: needs proxy_protocol = true (only connections "
                              "from the balancers that ended TLS may count as encrypted)")


def split_list(text: str) -> list[str]:
    """A list setting written as one string, its items separated by spaces or commas."""
    return [item for item in text.replace(",", " ").split() if item]


def _check_api(api: APIConfig, origins: dict[tuple[str, str], str]) -> None:
    def where(key: str) -> str:
        return f"{origins.get(('api', key), DEFAULTS_NAME)}: [api] {key}"

    token = api.access_token
    if token.startswith("sha256:") and not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", token):
        raise ConfigError(f"{where('access_token')}: expected sha256: and 64 hex digits")
    for key in ("token_ttl", "token_lifetime", "keep_alive_timeout"):
        if getattr(api, key) <= 0:
            raise ConfigError(f"{where(key)}: must be positive")
    if api.max_body_size < 1024:
        raise ConfigError(f"{where('max_body_size')}: must be at least 1024")


def _check_store(config: Config, origins: dict[tuple[str, str], str]) -> None:
    if config.store.backend != "mongodb":
        return
    where = f"{origins.get(('store', 'uri'), DEFAULTS_NAME)}: [store] uri"
    if not config.store.uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(f"{where}: backend \"mongodb\" needs a mongodb:// or mongodb+srv:// URI")
    if importlib.util.find_spec("pymongo") is None:
        raise ConfigError(f"{origins.get(('store', 'backend'), DEFAULTS_NAME)}: [store] backend: \"mongodb\" needs "
                          "the mongodb extra: pip install 'wildduck[mongodb]'")


def _check_redis(config: Config, origins: dict[tuple[str, str], str]) -> None:
    using = [section for section in ("pubsub", "counters") if getattr(config, section).backend == "redis"]
    if not using:
        return
    from wildduck.adapters.redis.urls import check_url

    def where(section: str, key: str) -> str:
        return f"{origins.get((section, key), DEFAULTS_NAME)}: [{section}] {key}"

    try:
        check_url(config.redis.url)
    except ValueError as exc:
        raise ConfigError(f"{where('redis', 'url')}: {exc}") from None
    if config.redis.timeout <= 0:
        raise ConfigError(f"{where('redis', 'timeout')}: must be positive")
    if not 1 <= config.redis.threads <= 64:
        raise ConfigError(f"{where('redis', 'threads')}: must be from 1 to 64, got {config.redis.threads}")
    if importlib.util.find_spec("redis") is None:
        raise ConfigError(f"{where(using[0], 'backend')}: \"redis\" needs the redis extra: "
                          "pip install 'wildduck[redis]'")


def as_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The effective configuration as TOML-able tables (for ``wildduck check-config --print``)."""
    return {f.name: dataclasses.asdict(getattr(config, f.name)) for f in dataclasses.fields(config)
            if f.name != "sources"}

