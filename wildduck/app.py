"""Composition root: builds the adapters from the configuration, owns the root nursery, signals and shutdown."""

from __future__ import annotations

import datetime as dt
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from wildduck import __version__
from wildduck._speedups import active as active_speedups
from wildduck.adapters.local.counters import LocalCounters
from wildduck.adapters.local.pubsub import LocalPubSub
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.adapters.sqlite.store import SqliteStore
from wildduck.config import Config
from wildduck.domain.delivery import DeliveryService
from wildduck.domain.users import UserService
from wildduck.errors import ConfigError
from wildduck.net.listeners import Bound, Listener
from wildduck.net.tls import ReloadableTLS, generate_self_signed
from wildduck.sessions.imap import IMAPSettings, serve_imap_connection
from wildduck.sessions.imap import Services as IMAPServices
from wildduck.sessions.lmtp import LMTPSettings, serve_lmtp_connection

log = logging.getLogger(__name__)

#: how often the background maintenance (blob GC, journal pruning) runs, in seconds
MAINTENANCE_INTERVAL = 900.0
#: journal entries older than this are pruned (sessions that were away longer resync fully)
JOURNAL_RETENTION = dt.timedelta(hours=3)


@dataclass
class Services:
    """Everything the protocol sessions and the CLI need."""

    config: Config
    store: SqliteStore
    pubsub: LocalPubSub
    delivery: DeliveryService
    users: UserService
    counters: LocalCounters


@asynccontextmanager
async def open_services(config: Config) -> AsyncIterator[Services]:
    """Open the store and pub/sub described by ``config``; close them on exit."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_sqlite_store(
        config.resolve_data_path(config.store.path),
        default_quota=config.limits.default_quota,
        synchronous=config.store.synchronous,
        readers=config.store.readers,
    )
    pubsub = LocalPubSub()
    try:
        delivery = DeliveryService(
            store, pubsub,
            default_quota=config.limits.default_quota,
            max_message_size=config.limits.max_message_size,
        )
        counters = LocalCounters()
        users = UserService(store, counters, email_domain=config.server.email_domain or None,
                            auth_failures=config.limits.auth_failures,
                            auth_failure_window=config.limits.auth_failure_window)
        yield Services(config, store, pubsub, delivery, users, counters)
    finally:
        with trio.CancelScope(shield=True):
            await pubsub.aclose()
            await store.close()


class Server:
    """The running server: listeners under one nursery, signal handling, maintenance."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.config
        self.listeners: list[Listener] = []
        self.tls: dict[tuple[str, str], ReloadableTLS] = {}
        self.bound: dict[str, Bound] = {}
        self._stop = trio.Event()
        self.stopped = trio.Event()

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
        for name in ("pop3", "api"):
            if getattr(cfg, name).enabled:
                raise ConfigError(
                    f"[{name}] enabled = true, but this release of wildduck has no {name.upper()} server yet"
                )
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
                    stream, delivery, settings, peer=peer, tls_context=tls.context if tls else None
                )

            self.listeners.append(
                Listener("lmtp", cfg.lmtp.host, cfg.lmtp.port, lmtp_handler, max_connections=limits.max_connections)
            )
        if cfg.imap.enabled:
            self._imap_listeners()

    def _imap_listeners(self) -> None:
        cfg = self.config
        tls = self._tls_for(cfg.imap.cert, cfg.imap.key)
        settings = IMAPSettings(hostname=cfg.server.hostname, max_message_size=cfg.limits.max_message_size,
                                max_line_length=max(cfg.limits.max_line_length, 65536),
                                idle_timeout=max(cfg.limits.idle_timeout, 1800.0),
                                max_connections_per_user=cfg.imap.max_connections_per_user)
        services = IMAPServices(self.services.store, self.services.users, self.services.pubsub,
                                cfg.limits.default_quota, self.services.counters)

        def handler(implicit_tls: bool) -> Callable[[trio.abc.Stream, str], Awaitable[None]]:
            async def serve(stream: trio.abc.Stream, peer: str) -> None:
                await serve_imap_connection(
                    stream, services, settings, peer=peer,
                    tls_context=tls.context if cfg.imap.starttls and not implicit_tls else None,
                    tls_active=implicit_tls)
            return serve

        async def busy(stream: trio.abc.Stream, peer: str) -> None:
            await stream.send_all(b"* BYE too many connections\r\n")

        limit = cfg.limits.max_connections
        self.listeners.append(Listener("imap", cfg.imap.host, cfg.imap.port, handler(False), max_connections=limit,
                                       on_overload=busy))
        if cfg.imap.tls_port:  # 0 disables the implicit-TLS port
            self.listeners.append(Listener("imaps", cfg.imap.host, cfg.imap.tls_port, handler(True), tls=tls,
                                           max_connections=limit, on_overload=busy))

    async def run(self, *, task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop` or SIGTERM/SIGINT; SIGHUP reloads certificates.

        Reports ``{listener name: bound address}`` once every port is bound.
        """
        self.build_listeners()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._signals)
            nursery.start_soon(self._maintenance)
            for listener in self.listeners:
                self.bound[listener.name] = await nursery.start(listener.run)
            log.info(
                "wildduck %s ready (%s): %s",
                __version__,
                ", ".join(f"{k}={v}" for k, v in active_speedups().items()),
                ", ".join(f"{b.name} {b.host}:{b.port}" for b in self.bound.values()) or "no listeners",
            )
            task_status.started(dict(self.bound))
            await self._stop.wait()
            log.info("shutting down: no new connections, draining for %.0f s", self.config.server.shutdown_timeout)
            for listener in self.listeners:
                listener.stop_accepting()
                listener.drain(self.config.server.shutdown_timeout)
            with trio.move_on_after(self.config.server.shutdown_timeout + 1):
                for listener in self.listeners:
                    await listener.drained.wait()
            nursery.cancel_scope.cancel()
        log.info("stopped")
        self.stopped.set()

    def stop(self) -> None:
        self._stop.set()

    async def _signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    for holder in self.tls.values():
                        holder.reload()
                else:
                    log.info("received %s", signal.Signals(signum).name)
                    self.stop()

    async def _maintenance(self) -> None:
        store = self.services.store
        grace = dt.timedelta(seconds=self.config.limits.blob_grace_period)
        while True:
            now = dt.datetime.now(dt.UTC)
            try:
                removed = await store.collect_garbage(now - grace)
                pruned = await store.prune_journal(now - JOURNAL_RETENTION)
                if removed or pruned:
                    log.info("maintenance: removed %d unreferenced blobs, %d journal entries", removed, pruned)
            except Exception:
                log.exception("maintenance failed; retrying later")
            await trio.sleep(MAINTENANCE_INTERVAL)


async def serve(config: Config, *, task_status: trio.TaskStatus[dict[str, Bound]] = trio.TASK_STATUS_IGNORED,
                stop: trio.Event | None = None) -> None:
    """Open the services and run the server until SIGTERM/SIGINT (or ``stop``, for tests) ends it."""
    async with open_services(config) as services:
        server = Server(services)
        async with trio.open_nursery() as nursery:
            if stop is not None:
                async def watch() -> None:
                    await stop.wait()
                    server.stop()

                nursery.start_soon(watch)
            bound = await nursery.start(server.run)
            task_status.started(bound)
            await server.stopped.wait()
            nursery.cancel_scope.cancel()
