"""Fixtures every test directory shares: the deployments of the protocol suites and their session servers
(``tests/deployments.py``)."""

from tests.deployments import deployment, ferretdb_server, session_redis

__all__ = ["deployment", "ferretdb_server", "session_redis"]
