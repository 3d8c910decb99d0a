"""The Redis URL forms the configuration accepts (parsed without redis-py, so that the configuration can be checked
where the ``redis`` extra is not installed).

* ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix://[[user]:password@]/path.sock[?db=N]``:
  redis-py's own forms (``ConnectionPool.from_url``).
* ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service_name[/db]``: the master of
  ``service_name`` as the Sentinels (default port 26379) tell it, followed across failovers; the password is the
  master's (Sentinels without authentication). ``rediss+sentinel://`` speaks TLS to the master.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SCHEMES = ("redis", "rediss", "unix", *SENTINEL_SCHEMES)
SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelURL:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_sentinel_url(url: str) -> SentinelURL:
    """The parts of a ``redis+sentinel://`` URL; ``ValueError`` naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"not a Sentinel URL: {url!r}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        host, port = item, SENTINEL_PORT
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            if rest.startswith(":"):
                port = _port(rest[1:], url)
        elif ":" in item:
            host, _, text = item.rpartition(":")
            port = _port(text, url)
        if not host:
            raise ValueError(f"a Sentinel host is missing in {url!r}")
        sentinels.append((host, port))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError(f"expected /service_name or /service_name/db after the Sentinels in {url!r}")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError(f"the database must be a number in {url!r}")
        db = int(path[1])
    return SentinelURL(sentinels, unquote(path[0]), db, unquote(username) or None, unquote(password) or None,
                       tls=parts.scheme == "rediss+sentinel")


def _port(text: str, url: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"not a port: {text!r} in {url!r}")
    return int(text)


def check_url(url: str) -> None:
    """``ValueError`` unless ``url`` is one of the accepted forms (the configuration's check)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"expected a URL starting with {', '.join(s + '://' for s in SCHEMES)}, got {url!r}")
    if parts.scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(url)
    elif parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"the socket's path is missing in {url!r}")
    else:
        if not parts.hostname:
            raise ValueError(f"the host is missing in {url!r}")
        parts.port  # noqa: B018 - raises ValueError for a bad port
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ValueError(f"the database must be a number in {url!r}")


def describe(url: str) -> str:
    """``url`` without its password, for log lines."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


