"""Composition root: builds the adapters from the configuration, owns the root nursery, signals and shutdown."""

from __future__ import annotations

import datetime as dt
import gc
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from wildduck import __version__, metrics
from wildduck._speedups import active as active_speedups
from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.local.node import ForwardingPubSub, MeshPubSub, Query, serve_node_pubsub
from wildduck.adapters.local.pubsub import LocalPubSub
from wildduck.adapters.sqlite import SqliteStore, open_sqlite_store
from wildduck.adapters.sqlite.counters import SqliteCounters, open_sqlite_counters
from wildduck.api.app import create_app
from wildduck.api.context import ApiServices, ApiSettings, root_token_sha256
from wildduck.api.serve import ApiServer
from wildduck.config import Config, LMTPConfig, MailProtocolConfig, split_list
from wildduck.domain.auth import LoginPolicy, LoginService
from wildduck.domain.delivery import DeliveryService
from wildduck.domain.health import HealthService
from wildduck.domain.mailboxes import MailboxService
from wildduck.domain.maildrop import MaildropService
from wildduck.domain.messages import MessageService
from wildduck.domain.search import SearchService
from wildduck.domain.sync import SyncService
from wildduck.domain.tokens import TokenPolicy, TokenService
from wildduck.domain.updates import UpdatesService
from wildduck.domain.users import UserService
from wildduck.errors import ConfigError, NotFound
from wildduck.log import reopen_log_files
from wildduck.metrics import serve_metrics
from wildduck.net.balance import LoadBoard
from wildduck.net.listeners import Bound, Listener, bind
from wildduck.net.proxy import ProxyPolicy
from wildduck.net.tls import ReloadableTLS, generate_self_signed
from wildduck.ports import Backends, Counters
from wildduck.sessions._runner import Lifecycle
from wildduck.sessions.imap import IMAPServices, IMAPSettings, serve_imap_connection
from wildduck.sessions.lmtp import LMTPSettings, serve_lmtp_connection
from wildduck.sessions.pop3 import POP3Services, POP3Settings, serve_pop3_connection

if TYPE_CHECKING:
    from wildduck.adapters.mongodb import MongoStore
    from wildduck.adapters.redis.counters import RedisCounters

log = logging.getLogger(__name__)

#: how often the size gauges of the metrics are refreshed, in seconds
GAUGE_INTERVAL = 60.0
#: how often the background maintenance (blob GC, journal pruning) runs, in seconds
MAINTENANCE_INTERVAL = 900.0
#: journal entries older than this are pruned (sessions that were away longer resync fully). It must exceed the
#: longest idle time of any session ([imap] idle_timeout, 30 minutes by default)
JOURNAL_RETENTION = dt.timedelta(hours=3)
#: a deleted mailbox is swept this long after its deletion (writes that raced it on another instance have ended by
#: then: longer than a store's timeout for a pending change, 2 minutes on MongoDB)
DELETION_SWEEP_DELAY = dt.timedelta(minutes=10)
#: messages an older version indexed for search are re-indexed this many at a time (MongoDB: see
#: ``Maintenance.reindex_search``), for at most this many seconds of each maintenance pass
REINDEX_BATCH = 1000
REINDEX_BUDGET = 300.0


@dataclass(frozen=True, slots=True)
class Services:
    """The domain services every protocol, the CLI and (soon) the API share, over one set of backends."""

    config: Config
    backends: Backends
    users: UserService
    login: LoginService
    mailboxes: MailboxService
    messages: MessageService
    delivery: DeliveryService
    search: SearchService
    sync: SyncService


def build_services(config: Config, backends: Backends) -> Services:
    """Compose the domain services over ``backends`` with the policies of ``config``."""
    limits = config.limits
    users = UserService(backends.accounts, email_domain=config.server.email_domain or None,
                        pubsub=backends.pubsub)
    login = LoginService(users, backends.counters, backends.pubsub,
                         LoginPolicy(limits.auth_failures, limits.auth_failure_window))
    messages = MessageService(backends.messages, backends.accounts, backends.blobs, backends.pubsub,
                              default_quota=limits.default_quota, max_message_size=limits.max_message_size)
    return Services(
        config, backends, users, login, MailboxService(backends.mailboxes, backends.pubsub), messages,
        DeliveryService(backends.accounts, backends.mailboxes, messages), SearchService(backends.search),
        SyncService(backends.messages, backends.journal),
    )


def listen_specs(config: Config) -> list[tuple[str, str, bool, str, int]]:
    """Every listener ``serve`` may open: (listener name, config section, enabled, host, port). An implicit-TLS
    port of 0 is disabled."""
    specs = [("lmtp", "lmtp", config.lmtp.enabled, config.lmtp.host, config.lmtp.port)]
    for name in ("imap", "pop3"):
        section = getattr(config, name)
        specs += [(name, name, section.enabled, section.host, section.port),
                  (name + "s", name, section.enabled and bool(section.tls_port), section.host, section.tls_port)]
    specs.append(("api", "api", config.api.enabled, config.api.host, config.api.port))
    specs.append(("metrics", "metrics", config.metrics.enabled, config.metrics.host, config.metrics.port))
    return specs


def proxy_policy(section: LMTPConfig | MailProtocolConfig) -> ProxyPolicy | None:
    """The PROXY protocol settings of a listener's section (None when it takes direct connections)."""
    return ProxyPolicy.of(split_list(section.proxy_from)) if section.proxy_protocol else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listen address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_startable(config: Config) -> None:
    """Refuse (ConfigError, naming the key) what ``serve`` cannot start with: protocols this build has no server
    for, certificate files that are not there, listen addresses that are no addresses, two listeners on one port.
    ``check-config`` runs the same checks."""
    if config.api.enabled and not config.api.access_control and not is_loopback(config.api.host):
        raise ConfigError(f"[api] access_control = false: the API would let anyone act as root; it may listen on "
                          f"a loopback address only, not {config.api.host!r}")
    pairs = [("tls", config.tls.cert, config.tls.key)] + [
        (name, getattr(config, name).cert, getattr(config, name).key) for name in ("lmtp", "imap", "pop3", "api")]
    for section, cert, key in pairs:
        for what, path in (("cert", cert), ("key", key)):
            if path and not Path(path).is_file():
                raise ConfigError(f"[{section}] {what}: no such file {path}")
    ports: dict[tuple[str, int], str] = {}
    for _name, section, enabled, host, port in listen_specs(config):
        if not enabled:
            continue
        try:
            socket.getaddrinfo(host or None, None, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV)
        except (socket.gaierror, UnicodeError) as exc:
            raise ConfigError(f"[{section}] host: cannot listen on {host!r}: {exc}") from None
        if not port:
            continue  # 0: any free port (tests), or an implicit-TLS port turned off
        if (host, port) in ports:
            raise ConfigError(f"[{section}] port {port} on {host} is also used by [{ports[host, port]}]")
        ports[host, port] = section


async def bind_ports(config: Config) -> dict[str, list[trio.SocketListener]]:
    """Bind every listening port of ``config`` (ConfigError naming the listener and address if one fails)."""
    bound: dict[str, list[trio.SocketListener]] = {}
    try:
        for name, _section, enabled, host, port in listen_specs(config):
            if enabled:
                bound[name] = await bind(name, host, port)
    except BaseException:
        for sockets in bound.values():
            for s in sockets:
                await s.aclose()
        raise
    return bound


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process is worker ``index`` (from 0) of the ``count`` that ``wildduck serve --workers`` started."""

    index: int
    count: int
    #: the node's connection counts per worker and listener, for least-connections accepting
    board: LoadBoard | None = None

    def share(self, limit: int) -> int:
        """This worker's part of a node-wide connection limit (rounded up: the node may exceed it by count - 1)."""
        return -(-limit // self.count)


def node_socket(config: Config, worker: int | None = None) -> Path:
    """Where the server of this data directory takes nudges from the node's other processes (with several
    workers: where the supervisor does, or with ``worker``, where that worker takes them from the others)."""
    return config.data_dir / ("wildduck.sock" if worker is None else f"wildduck-{worker}.sock")


def counters_file(config: Config) -> Path:
    """The counters every worker of a multi-process node shares (failed logins, connection slots, leases)."""
    return config.data_dir / "counters.sqlite3"


async def open_store(config: Config) -> SqliteStore | MongoStore:
    """The store of ``[store]``: the node's SQLite file, or the MongoDB database every instance shares (the extra
    is there: config.py checked)."""
    if config.store.backend == "mongodb":
        from wildduck.adapters.mongodb import open_mongo_store

        return await open_mongo_store(config.store.uri)
    return await open_sqlite_store(
        config.resolve_data_path(config.store.path),
        synchronous=config.store.synchronous,
        readers=config.store.readers,
        fsync_all=config.store.fsync_all,
    )


@asynccontextmanager
async def open_services(config: Config, *, server: bool = False,
                        worker: WorkerRole | None = None) -> AsyncIterator[Services]:
    """Open the backends described by ``config`` and the services over them; close them on exit.

    ``server``: for ``wildduck serve``. Other processes (the CLI) forward their nudges to the running server, so
    that what they deliver or change reaches its sessions at once. ``worker``: for one worker of several; its
    counters are the node's shared file and its nudges reach the other workers too. ``[counters]`` and
    ``[pubsub]`` with backend "redis" put them in Redis instead, for every process of every instance."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(config)
    counters: Counters = LocalCounters()
    shared: SqliteCounters | RedisCounters | None = None
    redis = config.redis
    if config.counters.backend == "redis":  # every instance's (the extra is there: config.py checked)
        from wildduck.adapters.redis.counters import open_redis_counters

        counters = shared = await open_redis_counters(redis.url, prefix=redis.prefix, threads=redis.threads,
                                                      call_timeout=redis.timeout)
    elif worker is not None:
        counters = shared = await open_sqlite_counters(counters_file(config))
    pubsub: LocalPubSub
    if config.pubsub.backend == "redis":  # every process publishes to Redis itself, the CLI too
        from wildduck.adapters.redis.pubsub import open_redis_pubsub

        pubsub = await open_redis_pubsub(redis.url, prefix=redis.prefix, call_timeout=redis.timeout)
    elif worker is not None:
        pubsub = MeshPubSub([node_socket(config, i) for i in range(worker.count) if i != worker.index])
    else:
        pubsub = LocalPubSub() if server else ForwardingPubSub(node_socket(config))
    try:
        backends = Backends(accounts=store, mailboxes=store, messages=store, journal=store, search=store,
                            blobs=store, maintenance=store, counters=counters, pubsub=pubsub)
        yield build_services(config, backends)
    finally:
        with trio.CancelScope(shield=True):
            await pubsub.aclose()
            if shared is not None:
                await shared.close()
            await store.close()


def log_ready(bound: Iterable[Bound], workers: int = 1) -> None:
    """The line that says the server serves (tests and scripts read the bound ports from it)."""
    log.info(
        "wildduck %s ready (%s%s): %s",
        __version__,
        ", ".join(f"{k}={v}" for k, v in active_speedups().items()),
        f", {workers} workers" if workers > 1 else "",
        ", ".join(f"{b.name} {b.host}:{b.port}" for b in bound) or "no listeners",
    )


async def metrics_json(_argument: str = "") -> str:
    """This process's metrics in Prometheus' text format, as one JSON string (the supervisor's query)."""
    await trio.lowlevel.checkpoint()
    return json.dumps(metrics.render().decode())


class Server:
    """The running server: listeners under one nursery, signal handling, maintenance."""

    def __init__(self, services: Services, prebound: dict[str, list[trio.SocketListener]] | None = None, *,
                 worker: WorkerRole | None = None) -> None:
        self.services = services
        #: set when this process is one worker of several (the supervisor serves metrics and ``wildduck.sock``)
        self.worker = worker
        #: sockets :func:`bind_ports` bound before anything was created (by listener name)
        self.prebound = prebound or {}
        self.config = services.config
        self.listeners: list[Listener] = []
        self.tls: dict[tuple[str, str], ReloadableTLS] = {}
        #: the HTTP API, when [api] enables it
        self.api: ApiServer | None = None
        self.bound: dict[str, Bound] = {}
        self._stop = trio.Event()
        self.stopped = trio.Event()
        #: tells sessions waiting for their client to say goodbye at shutdown
        self.lifecycle = Lifecycle()
        #: names this process as the holder of maintenance leases
        self.instance = secrets.token_hex(8)

    def _tls_for(self, cert: str, key: str) -> ReloadableTLS:
        """One reloadable context per certificate pair; section files, else [tls], else self-signed."""
        if not cert:
            cert, key = self.config.tls.cert, self.config.tls.key
        if not cert:
            cert_path, key_path = generate_self_signed(self.config.data_dir, self.config.server.hostname)
        else:
            cert_path, key_path = Path(cert), Path(key)
        pair = (str(cert_path), str(key_path))
        if pair not in self.tls:
            try:
                self.tls[pair] = ReloadableTLS(cert_path, key_path)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot load TLS certificate {cert_path} / {key_path}: {exc}") from None
        return self.tls[pair]

    def build_listeners(self) -> None:
        cfg = self.config
        check_startable(cfg)
        limits = cfg.limits
        # the default certificate exists from the first start on (self-signed when [tls] names none), so that
        # every TLS listener has one and SIGHUP has something to reload
        self._tls_for("", "")
        if cfg.lmtp.enabled:
            tls = self._tls_for(cfg.lmtp.cert, cfg.lmtp.key) if cfg.lmtp.starttls else None
            settings = LMTPSettings(
                hostname=cfg.server.hostname,
                max_message_size=limits.max_message_size,
                max_recipients=limits.max_recipients,
                max_line_length=limits.max_line_length,
                idle_timeout=limits.idle_timeout,
            )
            delivery = self.services.delivery

            async def lmtp_handler(stream: trio.abc.Stream, peer: str) -> None:
                await serve_lmtp_connection(
                    stream, delivery, settings, peer=peer, tls_context=tls.context if tls else None,
                    send_timeout=limits.send_timeout, lifecycle=self.lifecycle)

            self.listeners.append(
                Listener("lmtp", cfg.lmtp.host, cfg.lmtp.port, lmtp_handler,
                         max_connections=self._connection_limit(), proxy=proxy_policy(cfg.lmtp))
            )
        if cfg.imap.enabled:
            self._imap_listeners()
        if cfg.pop3.enabled:
            self._pop3_listeners()

    def _connection_limit(self) -> int:
        """A listener's connections at most in this process: ``[limits] max_connections``, or a worker's share."""
        limit = self.config.limits.max_connections
        return self.worker.share(limit) if self.worker is not None else limit

    def _api_server(self, sockets: list[trio.SocketListener]) -> ApiServer:
        """The HTTP API over the same domain services as the sessions, on ``sockets``."""
        cfg = self.config
        sv = self.services
        services = ApiServices(
            users=sv.users, login=sv.login, mailboxes=sv.mailboxes,
            tokens=TokenService(sv.users, sv.backends.counters, TokenPolicy(cfg.api.token_ttl, cfg.api.token_lifetime)),
            health=HealthService(sv.backends.maintenance, sv.backends.counters),
            messages=sv.messages, search=sv.search,
            updates=UpdatesService(sv.backends.journal, sv.mailboxes, sv.backends.pubsub),
        )
        settings = ApiSettings(
            access_control=cfg.api.access_control, root_token_sha256=root_token_sha256(cfg.api.access_token),
            max_body_size=cfg.api.max_body_size,
            cors_origins=tuple(split_list(cfg.api.cors_origins)),
            default_quota=cfg.limits.default_quota, imap_max_connections=cfg.imap.max_connections_per_user,
            pop3_max_messages=cfg.pop3.max_messages, version=__version__,
        )
        tls = None
        if cfg.api.tls:
            holder = self._tls_for(cfg.api.cert, cfg.api.key)
            tls = (holder.cert, holder.key)
        return ApiServer(create_app(services, settings), sockets, tls=tls,
                         keep_alive_timeout=cfg.api.keep_alive_timeout,
                         graceful_timeout=cfg.server.shutdown_timeout, send_timeout=cfg.limits.send_timeout,
                         max_connections=self._connection_limit(),
                         seat=self.worker.board.seat(self.worker.index, "api")
                         if self.worker is not None and self.worker.board is not None else None)

    def _imap_listeners(self) -> None:
        cfg = self.config
        settings = IMAPSettings(hostname=cfg.server.hostname, max_message_size=cfg.limits.max_message_size,
                                max_line_length=cfg.imap.max_line_length, idle_timeout=cfg.imap.idle_timeout,
                                max_connections_per_user=cfg.imap.max_connections_per_user)
        sv = self.services
        services = IMAPServices(sv.login, sv.mailboxes, sv.messages, sv.search, sv.sync)

        def serve(stream: trio.abc.Stream, peer: str, tls: ssl.SSLContext | None, implicit: bool) -> Awaitable[None]:
            return serve_imap_connection(stream, services, settings, peer=peer, tls_context=tls, tls_active=implicit,
                                         send_timeout=cfg.limits.send_timeout, lifecycle=self.lifecycle)

        self._mail_listeners("imap", cfg.imap, serve, b"* BYE too many connections\r\n")

    def _pop3_listeners(self) -> None:
        cfg = self.config
        settings = POP3Settings(hostname=cfg.server.hostname, max_line_length=cfg.pop3.max_line_length,
                                idle_timeout=cfg.pop3.idle_timeout,
                                max_connections_per_user=cfg.pop3.max_connections_per_user)
        sv = self.services
        services = POP3Services(sv.login, MaildropService(sv.mailboxes, sv.messages,
                                                          max_messages=cfg.pop3.max_messages), sv.messages)

        def serve(stream: trio.abc.Stream, peer: str, tls: ssl.SSLContext | None, implicit: bool) -> Awaitable[None]:
            return serve_pop3_connection(stream, services, settings, peer=peer, tls_context=tls, tls_active=implicit,
                                         send_timeout=cfg.limits.send_timeout, lifecycle=self.lifecycle)

        self._mail_listeners("pop3", cfg.pop3, serve, b"-ERR [SYS/TEMP] too many connections\r\n")

    def _mail_listeners(self, name: str, section: MailProtocolConfig,
                        serve: Callable[[trio.abc.Stream, str, ssl.SSLContext | None, bool], Awaitable[None]],
                        busy_reply: bytes) -> None:
        """The plain port (with STARTTLS/STLS when ``starttls``) and the implicit-TLS port of IMAP or POP3."""
        tls = self._tls_for(section.cert, section.key)
        starttls = tls if section.starttls else None

        async def plain(stream: trio.abc.Stream, peer: str) -> None:
            if section.tls_offloaded:  # TLS ended at the balancer: encrypted already, nothing to STARTTLS
                await serve(stream, peer, None, True)
            else:
                await serve(stream, peer, starttls.context if starttls else None, False)

        async def implicit(stream: trio.abc.Stream, peer: str) -> None:
            await serve(stream, peer, None, True)

        async def busy(stream: trio.abc.Stream, peer: str) -> None:
            await stream.send_all(busy_reply)

        limit = self._connection_limit()
        proxy = proxy_policy(section)
        self.listeners.append(Listener(name, section.host, section.port, plain, max_connections=limit,
                                       on_overload=busy, proxy=proxy))
        if section.tls_port:  # 0 disables the implicit-TLS port
            self.listeners.append(Listener(name + "s", section.host, section.tls_port, implicit, tls=tls,
                                           max_connections=limit, on_overload=busy, proxy=proxy))

    async def run(self, *, task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop` or SIGTERM/SIGINT; SIGHUP reloads certificates.

        Reports ``{listener name: bound address}`` once every port is bound.
        """
        self.build_listeners()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._signals)
            nursery.start_soon(self._maintenance)
            await nursery.start(self.services.login.keep_slots)
            await nursery.start(self.services.login.authlog.keep)
            if self.config.metrics.enabled and self.worker is None:
                sockets = self.prebound.get("metrics") or await bind(
                    "metrics", self.config.metrics.host, self.config.metrics.port)
                mhost, mport = await nursery.start(serve_metrics, sockets)
                self.bound["metrics"] = Bound("metrics", mhost, mport)
                nursery.start_soon(self._gauges)
            pubsub = self.services.backends.pubsub
            if isinstance(pubsub, LocalPubSub):  # the single node: other processes' nudges come over a socket
                queries: dict[str, Query] = {"status": self.status_json, "unlock": self.unlock_json,
                                             "metrics": metrics_json}
                index = self.worker.index if self.worker else None
                await nursery.start(partial(serve_node_pubsub, queries=queries),
                                    node_socket(self.config, index), pubsub)
            if isinstance(pubsub, MeshPubSub):
                await nursery.start(pubsub.run)
            for listener in self.listeners:
                listener.sockets = self.prebound.get(listener.name)
                if self.worker is not None and self.worker.board is not None:
                    listener.seat = self.worker.board.seat(self.worker.index, listener.name)
                self.bound[listener.name] = await nursery.start(listener.run)
            if self.config.api.enabled:
                sockets = self.prebound.get("api") or await bind("api", self.config.api.host, self.config.api.port)
                self.api = self._api_server(sockets)
                self.bound["api"] = await nursery.start(self.api.run)
            if self.worker is not None:
                log.info("worker %d of %d (pid %d) serving", self.worker.index, self.worker.count, os.getpid())
            else:
                log_ready(self.bound.values())
            task_status.started(dict(self.bound))
            await self._stop.wait()
            log.info("shutting down: no new connections, draining for %.0f s", self.config.server.shutdown_timeout)
            for listener in self.listeners:
                listener.stop_accepting()
                listener.drain(self.config.server.shutdown_timeout)
            if self.api is not None:
                self.api.stop()  # idle keep-alive connections close now; requests in flight finish
            self.lifecycle.stop()  # sessions waiting for their client say goodbye now; commands in flight finish
            with trio.move_on_after(self.config.server.shutdown_timeout + 1):
                for listener in self.listeners:
                    await listener.drained.wait()
                if self.api is not None:
                    await self.api.done.wait()
            nursery.cancel_scope.cancel()
        log.info("stopped")
        self.stopped.set()

    def stop(self) -> None:
        self._stop.set()

    async def unlock_json(self, user_id: str) -> str:
        """``wildduck user unlock``: forget the failed logins of the user in this server's counters."""
        try:
            user = await self.services.users.find(user_id)
        except NotFound as exc:
            return json.dumps({"error": str(exc)})
        await self.services.login.unlock(user)
        return json.dumps({"unlocked": user.username})

    async def status_json(self, _argument: str = "") -> str:
        """What ``wildduck status`` shows: listeners, open connections per listener, database size, last
        delivery, version."""
        last = self.services.delivery.last_delivery
        listeners = list(self.listeners)
        if self.api is not None and self.api.listener is not None:
            listeners.append(self.api.listener)
        return json.dumps({
            "version": __version__,
            "pid": os.getpid(),
            "listeners": {b.name: f"{b.host}:{b.port}" for b in self.bound.values()},
            "connections": {listener.name: listener.active for listener in listeners},
            "database_bytes": await self.services.backends.maintenance.storage_bytes(),
            "last_delivery": last.isoformat() if last else None,
            "stopping": self._stop.is_set(),
        })

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    for holder in self.tls.values():
                        holder.reload()
                    reopen_log_files()
                else:
                    log.info("received %s", signal.Signals(signum).name)
                    self.stop()

    async def _gauges(self) -> None:
        """Refresh the size gauges (the blob store, the database file) once a minute."""
        backends = self.services.backends
        while True:
            try:
                metrics.BLOB_BYTES.set((await backends.blobs.blob_stats()).stored_bytes)
                metrics.DATABASE_BYTES.set(await backends.maintenance.storage_bytes())
            except Exception:
                log.exception("reading the store's size failed")
            await trio.sleep(GAUGE_INTERVAL)

    async def _maintenance(self) -> None:
        """Blob GC, journal pruning, the authentication log's expiry, the sweep of deleted mailboxes and the search
        re-indexing of messages stored by an older version, under a lease so that one instance of a deployment does
        them."""
        backends = self.services.backends
        grace = dt.timedelta(seconds=self.config.limits.blob_grace_period)
        while True:
            now = dt.datetime.now(dt.UTC)
            try:
                if await backends.counters.acquire_lease("maintenance", self.instance, MAINTENANCE_INTERVAL):
                    removed = await backends.blobs.collect_garbage(now - grace)
                    pruned = await backends.journal.prune_journal(now - JOURNAL_RETENTION)
                    expired = await self.services.login.authlog.prune()
                    swept = await backends.maintenance.sweep_deleted(now - DELETION_SWEEP_DELAY)
                    reindexed, until = 0, trio.current_time() + REINDEX_BUDGET
                    while trio.current_time() < until:  # batches, a while in each pass, until none is left
                        batch = await backends.maintenance.reindex_search(REINDEX_BATCH)
                        reindexed += batch
                        if batch < REINDEX_BATCH:
                            break
                    if removed or pruned or expired or swept or reindexed:
                        log.info("maintenance: removed %d unreferenced blobs, %d journal entries, %d expired "
                                 "authentication log entries, %d messages stored into mailboxes being deleted; "
                                 "re-indexed %d messages for search", removed, pruned, expired, swept, reindexed)
            except Exception:
                log.exception("maintenance failed; retrying later")
            await trio.sleep(MAINTENANCE_INTERVAL)


async def serve(config: Config, *, task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED,
                stop: trio.Event | None = None, worker: WorkerRole | None = None,
                inherited: dict[str, list[trio.SocketListener]] | None = None, freeze_gc: bool = False) -> None:
    """Open the services and run the server until SIGTERM/SIGINT (or ``stop``, for tests) ends it. A ``worker``
    serves the ``inherited`` sockets its supervisor bound. ``freeze_gc``: a process of its own (``wildduck
    serve``, a worker), whose start-up objects leave the garbage collector's view once it serves."""
    check_startable(config)  # before anything is created on disk
    # a port in use stops the start before the database or a certificate
    prebound = inherited if inherited is not None else await bind_ports(config)
    async with open_services(config, server=True, worker=worker) as services:
        server = Server(services, prebound, worker=worker)
        async with trio.open_nursery() as nursery:
            if stop is not None:
                async def watch() -> None:
                    await stop.wait()
                    server.stop()

                nursery.start_soon(watch)
            bound = await nursery.start(server.run)
            if freeze_gc:
                # what start-up made (modules, configuration, services) lives as long as the process: out of
                # every later garbage collection, whose full passes stop the event loop for as long as they walk
                gc.freeze()
            task_status.started(bound)
            await server.stopped.wait()
            nursery.cancel_scope.cancel()
