"""The ``wildduck`` command: serve, init, check-config, backup/restore, user/address/message administration,
deliver."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click
import trio

from wildduck import __version__
from wildduck._speedups import active as active_speedups
from wildduck.config import MAX_WORKERS, Config, as_dict, load_config
from wildduck.errors import ConfigError, DomainError, InvalidInput, NotFound, StoreError

T = TypeVar("T")


def version_text() -> str:
    impl = active_speedups()
    kind = "cython" if all(v == "cython" for v in impl.values()) else (
        "pure-python" if all(v == "python" for v in impl.values()) else "mixed")
    detail = ", ".join(f"{k}={v}" for k, v in impl.items())
    return f"wildduck {__version__} ({kind} speedups: {detail}; Python {sys.version.split()[0]})"


def _print_version(ctx: click.Context) -> None:
    click.echo(version_text())
    ctx.exit()


def _parse_size(text: str | None) -> int | None:
    """Bytes from ``"1073741824"``, ``"500M"``, ``"2G"``, ``"10KB"`` (binary multiples)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size (examples: 1073741824, 500M, 2G)")
    unit = m.group(2).lower()
    return int(m.group(1)) * (1024 ** ("kmgt".index(unit) + 1) if unit else 1)


class _Obj:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        #: ``serve --data-dir``: overrides [server] data_dir
        self.data_dir: str | None = None
        #: ``serve --workers``: overrides [server] workers
        self.workers: int | None = None

    def config(self) -> Config:
        try:
            server: dict[str, Any] = {"data_dir": self.data_dir} if self.data_dir else {}
            if self.workers is not None:
                server["workers"] = self.workers
            overrides = {"server": server} if server else None
            return load_config(self.config_path, overrides=overrides)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def human_size(n: int) -> str:
    """``532 B``, ``1.5 KiB``, ``10 MiB``, ``2.3 GiB`` (binary multiples, one decimal at most)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in "KMGT":
        value /= 1024
        if value < 1024 or unit == "T":
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}iB"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``header`` in columns two spaces apart (the last column is not padded)."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, str(row[-1])]).rstrip())


def _store_path(config: Config) -> Path:
    """The absolute path of the configuration's database file."""
    return config.resolve_data_path(config.store.path).absolute()


def _mongodb_name(uri: str) -> str:
    """``database on hosts`` of a MongoDB URI, without its credentials (for messages)."""
    parts = urllib.parse.urlsplit(uri)
    hosts = parts.netloc.rsplit("@", 1)[-1]
    return f"MongoDB database {parts.path.strip('/') or 'wildduck'} on {hosts}"


def _sqlite_only(config: Config, what: str) -> None:
    if config.store.backend != "sqlite":
        raise click.ClickException(
            f"{what} copies the embedded SQLite store; this configuration's store is the "
            f"{_mongodb_name(config.store.uri)}: use MongoDB's own tools (mongodump/mongorestore, or the replica "
            "set's snapshots)")


def _existing_store(config: Config) -> Path | None:
    """The database file of ``config`` (None for MongoDB), announced on stderr; a one-line error if the file does
    not exist (administrative commands never create a SQLite store: ``serve`` and ``init`` do)."""
    if config.store.backend == "mongodb":
        click.echo(f"using the {_mongodb_name(config.store.uri)}", err=True)
        return None
    path = _store_path(config)
    if not path.is_file():
        raise click.ClickException(
            f"no database at {path}: create one with `wildduck init`, or point --config (or WILDDUCK_CONFIG) at "
            f"the configuration of the server whose data you mean")
    click.echo(f"using {path}", err=True)
    return path


def _run(obj: _Obj, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the services of the configuration's existing store, run ``fn(services)`` under trio, map domain
    errors to messages."""
    from wildduck.app import open_services

    config = obj.config()
    _existing_store(config)

    async def main() -> T:
        async with open_services(config) as services:
            return await fn(services)

    try:
        return trio.run(main)
    except (DomainError, ConfigError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
              help="Show the version and which implementation (Cython or pure Python) is active.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), envvar="WILDDUCK_CONFIG",
              help="TOML file merged over the built-in defaults.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """wildduck: a mail server that keeps all mail in a database."""
    ctx.obj = _Obj(config_path)


@cli.command()
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="TOML configuration file.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory (overrides [server] data_dir).")
@click.option("--workers", type=click.IntRange(1, MAX_WORKERS), default=None,
              help="Server processes sharing the ports (overrides [server] workers).")
@click.pass_obj
def serve(obj: _Obj, config_path: str | None, data_dir: str | None, workers: int | None) -> None:
    """Run the server until SIGTERM or SIGINT (SIGHUP reloads TLS certificates and reopens the log file)."""
    from wildduck.app import serve as serve_app
    from wildduck.log import setup_logging
    from wildduck.supervisor import WORKER_ENV, run_worker, supervise

    if config_path:
        obj.config_path = config_path
    obj.data_dir = data_dir
    obj.workers = workers
    config = obj.config()
    setup_logging(config.server.log_level, fmt=config.server.log_format, file=config.server.log_file)
    worker_spec = os.environ.pop(WORKER_ENV, None)
    try:
        if worker_spec is not None:
            trio.run(run_worker, config, worker_spec)
        elif config.server.workers > 1:
            command = [sys.executable, "-m", "wildduck", "serve"]
            if obj.config_path:
                command += ["--config", str(Path(obj.config_path).absolute())]
            command += ["--data-dir", str(config.data_dir.absolute())]
            trio.run(supervise, config, command)
        else:
            trio.run(partial(serve_app, config, freeze_gc=True))
    except BaseException as exc:  # noqa: BLE001 - errors from the nursery arrive grouped
        reason = _startup_error(exc)
        if reason is None:
            raise
        raise click.ClickException(reason) from None


def _startup_error(exc: BaseException) -> str | None:
    """A one-line reason for a configuration or OS error (e.g. address in use), found inside exception groups."""
    if isinstance(exc, (ConfigError, StoreError)):
        return str(exc)
    if isinstance(exc, OSError):
        return f"cannot start: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            reason = _startup_error(inner)
            if reason is not None:
                return reason
    return None


@cli.command("check-config")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), help="TOML configuration file.")
@click.option("--print", "print_it", is_flag=True, help="Print the effective configuration.")
@click.pass_obj
def check_config(obj: _Obj, config_path: str | None, print_it: bool) -> None:
    """Validate the configuration and exit (0 when valid)."""
    if config_path:
        obj.config_path = config_path
    config = obj.config()
    from wildduck.app import check_startable

    try:
        check_startable(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if print_it:
        for section, values in as_dict(config).items():
            click.echo(f"[{section}]")
            for key, value in values.items():
                click.echo(f"{key} = {_toml_value(value)}")
            click.echo()
    click.echo(f"configuration OK ({' + '.join(config.sources)})")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


# the store -----------------------------------------------------------------------------------------------------
@cli.command()
@click.pass_obj
def init(obj: _Obj) -> None:
    """Create the data directory and an empty database (an existing one is left as it is)."""
    from wildduck.app import open_services

    config = obj.config()
    path = _store_path(config)
    if config.store.backend == "sqlite" and path.exists():
        click.echo(f"{path} exists already; nothing to do")
        return

    async def create() -> None:
        async with open_services(config):
            pass

    try:
        trio.run(create)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if config.store.backend == "mongodb":
        click.echo(f"the {_mongodb_name(config.store.uri)} is ready (collections and indexes)")
    else:
        click.echo(f"created {path}")


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback ``(done, total)`` drawing a bar on stderr when it is a terminal (else None)."""
    if not sys.stderr.isatty():
        yield None
        return
    with contextlib.ExitStack() as stack:
        bar: Any = None
        shown = 0

        def update(done: int, total: int) -> None:
            nonlocal bar, shown
            if bar is None:
                bar = stack.enter_context(click.progressbar(length=total, label=label, file=sys.stderr))
            bar.update(done - shown)
            shown = done

        yield update


def _contents(info: Any) -> str:
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    return (f"{count(info.users, 'user')}, {count(info.messages, 'message')}, schema v{info.schema_version}, "
            f"{human_size(info.size)}")


@cli.command()
@click.option("--sweep", is_flag=True,
              help="First finish mailbox deletions older than 10 minutes (what maintenance does every 15).")
@click.option("--reindex", is_flag=True,
              help="First re-index for search every message an older version indexed (what maintenance does in "
                   "batches; MongoDB only, SQLite did it when the database was opened).")
@click.pass_obj
def check(obj: _Obj, sweep: bool, reindex: bool) -> None:
    """Check the store's consistency: every message in a mailbox, attachment references and storage ledgers equal
    to the messages, no reference to a missing attachment (the engine's own check on SQLite). Prints each problem;
    exit status 1 when there is any. It reads every message: run it when the load is low."""
    from wildduck.app import DELETION_SWEEP_DELAY, REINDEX_BATCH

    async def go(s: Any) -> list[str]:
        maintenance = s.backends.maintenance
        if sweep:
            swept = await maintenance.sweep_deleted(dt.datetime.now(dt.UTC) - DELETION_SWEEP_DELAY)
            click.echo(f"swept {swept} message{'' if swept == 1 else 's'} stored into mailboxes being deleted")
        if reindex:
            reindexed, batch = 0, REINDEX_BATCH
            while batch == REINDEX_BATCH:
                batch = await maintenance.reindex_search(REINDEX_BATCH)
                reindexed += batch
            click.echo(f"re-indexed {reindexed} message{'' if reindexed == 1 else 's'} for search")
        problems: list[str] = await maintenance.check_integrity()
        return problems

    problems = _run(obj, go)
    for problem in problems:
        click.echo(problem)
    if problems:
        raise SystemExit(1)
    click.echo("the store is consistent")


@cli.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@click.pass_obj
def backup(obj: _Obj, dest: Path, force: bool) -> None:
    """Copy the database to DEST while the server keeps running (SQLite's online backup: one consistent
    snapshot), then verify the copy with PRAGMA integrity_check. DEST is a file, or a directory to write
    wildduck-YYYYmmdd-HHMMSS.db into."""
    from wildduck.adapters.sqlite.backup import backup_database

    config = obj.config()
    _sqlite_only(config, "backup")
    source = _existing_store(config)
    assert source is not None  # SQLite
    if dest.is_dir():
        dest = dest / f"wildduck-{dt.datetime.now():%Y%m%d-%H%M%S}.db"
    if dest.absolute() == source:
        raise click.ClickException(f"{dest} is the database itself")
    if dest.exists() and not force:
        raise click.ClickException(f"{dest} exists; pass --force to replace it")
    try:
        with _progress("backup") as progress:
            info = backup_database(source, dest, progress=progress)
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up to {dest} ({_contents(info)}); integrity check ok")


@cli.command()
@click.argument("src", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the existing database (it is kept aside, renamed).")
@click.pass_obj
def restore(obj: _Obj, src: Path, force: bool) -> None:
    """Replace the database with the backup SRC, after verifying SRC. Refused while a server (or any process)
    has the database open; an existing database is replaced only with --force and is kept aside as
    NAME.before-restore-<time>. An older schema is migrated when the store is next opened."""
    from wildduck.adapters.sqlite.backup import database_holder, restore_database, verify_database
    from wildduck.adapters.sqlite.schema import SCHEMA_VERSION

    config = obj.config()
    _sqlite_only(config, "restore")
    target = _store_path(config)
    click.echo(f"using {target}", err=True)
    try:
        holder = database_holder(target)
        if holder is not None:
            raise click.ClickException(
                f"{target} is in use by process {holder} (is `wildduck serve` running?); stop it and retry")
        if target.exists() and not force:
            raise click.ClickException(
                f"{target} exists; pass --force to replace it (it is kept aside, not deleted)")
        info = verify_database(src)
        with _progress("restore") as progress:
            aside = restore_database(src, target, progress=progress, verified=True)
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {src} to {target} ({_contents(info)})")
    if aside is not None:
        click.echo(f"the previous database is kept as {aside}")
    if info.schema_version < SCHEMA_VERSION:
        click.echo(f"schema v{info.schema_version} is migrated to v{SCHEMA_VERSION} when the store is next opened")


def _store_name(config: Config) -> str:
    """What a configuration's store is, for messages."""
    return _mongodb_name(config.store.uri) if config.store.backend == "mongodb" else str(_store_path(config))


@cli.command()
@click.option("--from", "source_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Configuration of the deployment to copy from.")
@click.option("--to", "target_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Configuration of the deployment to copy into.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=200, show_default=True,
              help="Messages per import call.")
@click.option("--max-batches", type=click.IntRange(0), default=None,
              help="Stop after this many import calls (run again to continue).")
@click.option("--no-verify", is_flag=True, help="Do not compare the copy with the source at the end.")
def migrate(source_path: str, target_path: str, batch: int, max_batches: int | None, no_verify: bool) -> None:
    """Copy every user, address, mailbox and message from one deployment to another (the single node's SQLite
    store, a cluster's MongoDB) keeping ids, UIDVALIDITY, UIDs, MODSEQs, flags and dates, then verify the copy
    (every message's bytes by SHA-256; exit status 1 on any difference). Running it again continues an interrupted
    copy: what the target holds already is skipped. Stop the source's servers first."""
    from wildduck.app import open_store
    from wildduck.domain import migrate as migration

    source_config, target_config = _Obj(source_path).config(), _Obj(target_path).config()
    _existing_store(source_config)
    if _store_name(source_config) == _store_name(target_config):
        raise click.ClickException(f"--from and --to are the same store ({_store_name(source_config)})")
    click.echo(f"copying into {_store_name(target_config)}", err=True)

    async def main() -> tuple[migration.MigrationReport, list[str] | None]:
        source = await open_store(source_config)
        try:
            target = await open_store(target_config)
            try:
                with _migrate_progress("copying") as progress:
                    report = await migration.migrate(source, target, batch=batch, progress=progress,
                                                     max_batches=max_batches)
                if no_verify or not report.complete:
                    return report, None
                with _migrate_progress("verifying") as progress:
                    return report, await migration.verify(source, target, batch=batch, progress=progress)
            finally:
                with trio.CancelScope(shield=True):
                    await target.close()
        finally:
            with trio.CancelScope(shield=True):
                await source.close()

    try:
        report, differences = trio.run(main)
    except (DomainError, ConfigError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"copied {report.users} users, {report.mailboxes} mailboxes, {report.messages} messages "
               f"(already there: {report.users_skipped} users, {report.mailboxes_skipped} mailboxes, "
               f"{report.messages_skipped} messages)")
    if not report.complete:
        click.echo(f"stopped after {max_batches} batches: run the same command again to continue")
        return
    if differences is None:
        return
    if differences:
        for line in differences[:50]:
            click.echo(f"difference: {line}", err=True)
        if len(differences) > 50:
            click.echo(f"... and {len(differences) - 50} more differences", err=True)
        click.echo(f"verification failed: {len(differences)} differences", err=True)
        sys.exit(1)
    click.echo("verified: every mailbox and message of the source is in the target, byte for byte")


@contextlib.contextmanager
def _migrate_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on a terminal (:func:`_progress`), else a line on stderr at every tenth of the way."""
    with _progress(label) as bar:
        if bar is not None:
            yield bar
            return
        shown = [-1]

        def line(done: int, total: int) -> None:
            tenth = done * 10 // total if total else 10
            if tenth > shown[0]:
                shown[0] = tenth
                click.echo(f"{label}: {done} of {total} messages", err=True)

        yield line


# users ---------------------------------------------------------------------------------------------------------
@cli.group()
def user() -> None:
    """Create, list and manage users."""


def _password_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--password", "-p", prompt=True, hide_input=True, confirmation_prompt=True,
                        help="The password (prompted for when omitted).")(f)


@user.command("create")
@click.argument("username")
@_password_option
@click.option("--address", "-a", help="Main address (default: the username if it is an address, else "
                                      "USERNAME@[server] email_domain).")
@click.option("--quota", "-q", help="Storage quota in bytes (suffixes K, M, G, T); default from [limits].")
@click.option("--name", default="", help="Display name.")
@click.pass_obj
def user_create(obj: _Obj, username: str, password: str, address: str | None, quota: str | None,
                name: str) -> None:
    """Create USERNAME with its default mailboxes."""
    quota_bytes = _parse_size(quota)

    async def go(s: Any) -> None:
        try:
            u = await s.users.create(username, password, address=address, quota=quota_bytes, name=name)
        except InvalidInput as exc:
            if exc.field == "email_domain":
                raise InvalidInput(f"{exc} (--address)", exc.field) from None
            raise
        addrs = await s.users.addresses(u)
        click.echo(f"created user {u.username} id={u.id} address={addrs[0].address}")

    _run(obj, go)


@user.command("list")
@click.pass_obj
def user_list(obj: _Obj) -> None:
    """List users: id, username, main address, storage used, quota."""

    async def go(s: Any) -> None:
        rows = []
        for u in sorted(await s.users.all(), key=lambda u: u.unameview):
            addrs = await s.users.addresses(u)
            main = next((a.address for a in addrs if a.main), "-")
            rows.append((u.id, u.username, main, human_size(u.storage_used), human_size(s.messages.quota_of(u))
                         + ("  (disabled)" if u.disabled else "")))
        _table(("ID", "USERNAME", "ADDRESS", "USED", "QUOTA"), rows)

    _run(obj, go)


@user.command("passwd")
@click.argument("username")
@_password_option
@click.pass_obj
def user_passwd(obj: _Obj, username: str, password: str) -> None:
    """Set the password of USERNAME."""

    async def go(s: Any) -> None:
        await s.users.set_password(await s.users.find(username), password)
        click.echo(f"password of {username} changed")

    _run(obj, go)


@user.command("quota")
@click.argument("username")
@click.argument("quota")
@click.pass_obj
def user_quota(obj: _Obj, username: str, quota: str) -> None:
    """Set the storage quota of USERNAME (bytes, or with K/M/G/T; "default" for the server default)."""
    value = None if quota == "default" else _parse_size(quota)

    async def go(s: Any) -> None:
        await s.users.set_quota(await s.users.find(username), value)
        click.echo(f"quota of {username} set to {quota}")

    _run(obj, go)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the server's answer as JSON.")
@click.pass_obj
def status(obj: _Obj, as_json: bool) -> None:
    """Show the running server of this data directory: listeners, open connections, database size, last
    delivery (exit status 1 when no server runs)."""
    from wildduck.adapters.local.node import ask
    from wildduck.app import node_socket

    config = obj.config()
    answer = trio.run(ask, node_socket(config), "status")
    if answer is None:
        click.echo(f"no server is running on {config.data_dir}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(answer)
        return
    st = json.loads(answer)
    click.echo(f"wildduck {st['version']} (pid {st['pid']}){' stopping' if st['stopping'] else ''}")
    for name, address in st["listeners"].items():
        click.echo(f"  {name:<8} {address:<22} {st['connections'].get(name, '-')} connections")
    for worker in st.get("workers", ()):
        busy = sum(worker["connections"].values())
        click.echo(f"  worker {worker['index']} (pid {worker['pid']}): {busy} connections")
    click.echo(f"database  {human_size(st['database_bytes'])}")
    click.echo(f"last delivery  {st['last_delivery'] or 'none since start'}")


@user.command("unlock")
@click.argument("username")
@click.pass_obj
def user_unlock(obj: _Obj, username: str) -> None:
    """Clear the login lockout of USERNAME (failed logins from every source address are forgotten); takes effect
    in the running server at once."""

    from wildduck.adapters.local.node import ask
    from wildduck.app import node_socket

    async def go(s: Any) -> None:
        u = await s.users.find(username)
        answer = await ask(node_socket(s.config), "unlock", u.id)
        if answer is None:  # the single node counts failed logins in the server's memory: none without a server
            click.echo(f"no server is running on {s.config.data_dir}: {u.username} has no lockout to clear")
            return
        reply = json.loads(answer)
        if "error" in reply:
            raise click.ClickException(reply["error"])
        click.echo(f"unlocked {u.username}: failed logins forgotten")

    _run(obj, go)


@user.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def user_delete(obj: _Obj, username: str, yes: bool) -> None:
    """Delete USERNAME with all its mail."""

    async def go(s: Any) -> None:
        u = await s.users.find(username)  # "no such user" comes before the question
        if not yes:
            click.confirm(f"Delete {u.username} and all its mail?", abort=True)
        await s.users.delete(u)
        click.echo(f"deleted user {u.username}")

    _run(obj, go)


# addresses -----------------------------------------------------------------------------------------------------
@cli.group()
def address() -> None:
    """Add, remove and list the addresses of users."""


@address.command("add")
@click.argument("username")
@click.argument("addr")
@click.option("--main", is_flag=True, help="Make it the main address.")
@click.pass_obj
def address_add(obj: _Obj, username: str, addr: str, main: bool) -> None:
    """Add address ADDR to USERNAME."""

    async def go(s: Any) -> None:
        a = await s.users.add_address(await s.users.find(username), addr, main=main)
        click.echo(f"added {a.address} to {username}")

    _run(obj, go)


@address.command("remove")
@click.argument("addr")
@click.pass_obj
def address_remove(obj: _Obj, addr: str) -> None:
    """Remove address ADDR (a user's main address cannot be removed)."""

    async def go(s: Any) -> None:
        await s.users.remove_address(addr)
        click.echo(f"removed {addr}")

    _run(obj, go)


@address.command("list")
@click.argument("username")
@click.pass_obj
def address_list(obj: _Obj, username: str) -> None:
    """List the addresses of USERNAME."""

    async def go(s: Any) -> None:
        for a in await s.users.addresses(await s.users.find(username)):
            click.echo(f"{a.address}{'  (main)' if a.main else ''}")

    _run(obj, go)


# messages ------------------------------------------------------------------------------------------------------
@cli.group()
def message() -> None:
    """List and export stored messages."""


async def _mailbox(s: Any, username: str, path: str) -> Any:
    u = await s.users.find(username)
    mbox = await s.mailboxes.find(u.id, path)
    if mbox is None:
        raise NotFound(f"{u.username} has no mailbox {path!r}")
    return mbox


@contextlib.contextmanager
def _naming(username: str, path: str, uid: int | None = None) -> Iterator[None]:
    """A NotFound in the block (the mailbox was deleted meanwhile, the message does not exist) names the mailbox by
    its path, never by the internal id the store reports."""
    try:
        yield
    except NotFound:
        what = "no mailbox" if uid is None else f"no message with UID {uid} in"
        raise NotFound(f"{username} has {what} {path!r}") from None


@message.command("list")
@click.argument("username")
@click.option("--mailbox", "-m", default="INBOX", show_default=True)
@click.pass_obj
def message_list(obj: _Obj, username: str, mailbox: str) -> None:
    """List the messages of a mailbox: UID, size, internal date, flags, subject."""

    async def go(s: Any) -> None:
        mbox = await _mailbox(s, username, mailbox)
        with _naming(username, mailbox):
            rows = [(str(m.uid), human_size(m.size), f"{m.internal_date:%Y-%m-%d %H:%M}",
                     " ".join(m.flags) or "-", m.subject) for m in await s.messages.summaries(mbox.id)]
        _table(("UID", "SIZE", "DATE", "FLAGS", "SUBJECT"), rows)

    _run(obj, go)


@message.command("export")
@click.argument("username")
@click.argument("uid", type=int)
@click.option("--mailbox", "-m", default="INBOX", show_default=True)
@click.option("--output", "-o", type=click.File("wb"), default="-", help="File to write (default: stdout).")
@click.pass_obj
def message_export(obj: _Obj, username: str, uid: int, mailbox: str, output: Any) -> None:
    """Write the stored message UID, recomposed byte for byte, to stdout or --output."""
    async def go(s: Any) -> bytes:
        mbox = await _mailbox(s, username, mailbox)
        with _naming(username, mailbox, uid):
            content: bytes = (await s.messages.open_message(mbox.id, uid)).content()
        return content

    output.write(_run(obj, go))


@cli.command()
@click.argument("recipients", nargs=-1, required=True)
@click.option("--file", "-f", "source", type=click.File("rb"), default="-", help="Message file (default: stdin).")
@click.pass_obj
def deliver(obj: _Obj, recipients: tuple[str, ...], source: Any) -> None:
    """Deliver a message (RFC 5322 bytes) to local RECIPIENTS without going through LMTP."""
    raw = source.read()

    async def go(s: Any) -> int:
        resolved = [await s.delivery.resolve(r, len(raw)) for r in recipients]
        failures = 0
        for rcpt, outcome in zip(recipients, await s.delivery.deliver(raw, resolved), strict=True):
            if isinstance(outcome, DomainError):
                failures += 1
                click.echo(f"{rcpt}: not delivered: {outcome}", err=True)
            else:
                click.echo(f"{rcpt}: delivered as uid {outcome.uid}")
        return failures

    if _run(obj, go):
        sys.exit(1)


def main() -> None:
    cli(prog_name="wildduck")
