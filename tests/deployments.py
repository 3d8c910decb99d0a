"""The two deployments every protocol suite runs on: "sqlite" (the single node: SQLite, in-process pub/sub and
counters) and "mongodb+redis" (the scaled-out one: the MongoDB store on the session's FerretDB, a fresh database per
test, and nudges and counters in the session's redis-server, a fresh key prefix per test).

A suite takes the ``deployment`` fixture (``tests/conftest.py`` makes it and the servers visible everywhere) and
hands its configuration to the server it builds: :meth:`Deployment.overrides` for an in-process
``running_server``, :meth:`Deployment.toml` for a ``wildduck serve`` subprocess. FerretDB and Redis start for the
first test that needs them and serve the whole session; outside CI a machine without them skips those tests with the
reason, with ``CI=true`` they fail.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from wildduck.testing import ferretdb
from wildduck.testing.redis import RedisServer, private_redis

#: the deployments of the protocol suites (the ids of the ``deployment`` fixture)
DEPLOYMENTS = ("sqlite", "mongodb+redis")

#: the test session's FerretDB (started by the ``ferretdb_server`` fixture for the first test that needs it)
_server: list[ferretdb.FerretDB] = []
_databases = itertools.count()


def mongodb_uri() -> str:
    """The URI of the session's FerretDB (only inside a test that asked for the ``ferretdb_server`` fixture)."""
    assert _server, "the mongodb tests need the ferretdb_server fixture (a test parametrized with 'mongodb')"
    return _server[0].uri


def fresh_database() -> str:
    """A database name no other test of this session uses."""
    return f"t{os.getpid()}_{next(_databases)}"


def _missing(reason: str) -> None:
    """Skip the test for ``reason``, or fail it in CI (which must run every deployment)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the mongodb tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ferretdb.FerretDB]:
    """One FerretDB for the whole session. Outside CI a machine that cannot build it skips the mongodb tests with
    the reason; with ``CI=true`` they fail instead."""
    reason = ferretdb.unavailable()
    try:
        import pymongo  # noqa: F401
    except ImportError:
        reason = reason or "pymongo is not installed (pip install wildduck[mongodb])"
    if reason is not None:
        _missing(reason)
    with ferretdb.running(tmp_path_factory.mktemp("ferretdb")) as server:
        _server.append(server)
        try:
            yield server
        finally:
            _server.clear()


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session (missing: skipped, or failed with ``CI=true``)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("the redis package is not installed (pip install wildduck[redis])")
    with private_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@dataclass(frozen=True)
class Deployment:
    """One deployment's configuration sections (none for "sqlite": the defaults are the single node)."""

    name: str
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def scaled_out(self) -> bool:
        return bool(self.sections)

    def overrides(self, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """``overrides`` (section → values, as ``running_server`` takes them) plus this deployment's sections."""
        merged = {section: dict(values) for section, values in (overrides or {}).items()}
        for section, values in self.sections.items():
            merged.setdefault(section, {}).update(values)
        return merged

    def toml(self) -> str:
        """This deployment's sections as configuration file text, for a ``wildduck serve`` subprocess (sections
        its other text must not repeat)."""
        return "".join(f"[{section}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
                       for section, values in self.sections.items())


_prefixes = itertools.count()


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The deployment this test runs on; for "mongodb+redis" a database and a Redis key prefix of its own."""
    if request.param == "sqlite":
        return Deployment("sqlite")
    server: ferretdb.FerretDB = request.getfixturevalue("ferretdb_server")
    redis_server: RedisServer = request.getfixturevalue("session_redis")
    return Deployment(request.param, {
        "store": {"backend": "mongodb", "uri": f"{server.uri.rstrip('/')}/{fresh_database()}"},
        "pubsub": {"backend": "redis"},
        "counters": {"backend": "redis"},
        "redis": {"url": redis_server.url, "prefix": f"t{os.getpid()}_{next(_prefixes)}:"},
    })
