"""The ``wildduck`` command: serve, check-config, user/address/message administration, deliver."""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import trio

from wildduck import __version__
from wildduck._speedups import active as active_speedups
from wildduck.config import Config, as_dict, load_config
from wildduck.errors import ConfigError, DomainError

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

    def config(self) -> Config:
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def _run(obj: _Obj, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the services of the configuration, run ``fn(services)`` under trio, map domain errors to messages."""
    from wildduck.app import open_services

    config = obj.config()

    async def main() -> T:
        async with open_services(config) as services:
            return await fn(services)

    try:
        return trio.run(main)
    except (DomainError, ConfigError) as exc:
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
@click.pass_obj
def serve(obj: _Obj, config_path: str | None) -> None:
    """Run the server until SIGTERM or SIGINT (SIGHUP reloads TLS certificates)."""
    from wildduck.app import serve as serve_app
    from wildduck.log import setup_logging

    if config_path:
        obj.config_path = config_path
    config = obj.config()
    setup_logging(config.server.log_level)
    try:
        trio.run(serve_app, config)
    except BaseException as exc:  # noqa: BLE001 - errors from the nursery arrive grouped
        reason = _startup_error(exc)
        if reason is None:
            raise
        raise click.ClickException(reason) from None


def _startup_error(exc: BaseException) -> str | None:
    """A one-line reason for a configuration or OS error (e.g. address in use), found inside exception groups."""
    if isinstance(exc, ConfigError):
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
        u = await s.users.create(username, password, address=address, quota=quota_bytes, name=name)
        addrs = await s.users.addresses(u)
        click.echo(f"created user {u.username} id={u.id} address={addrs[0].address}")

    _run(obj, go)


@user.command("list")
@click.pass_obj
def user_list(obj: _Obj) -> None:
    """List users: id, username, main address, storage used / quota."""

    async def go(s: Any) -> None:
        for u in await s.users.all():
            addrs = await s.users.addresses(u)
            main = next((a.address for a in addrs if a.main), "-")
            quota = s.messages.quota_of(u)
            click.echo(f"{u.id}  {u.username}  {main}  {u.storage_used}/{quota}")

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


@user.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def user_delete(obj: _Obj, username: str, yes: bool) -> None:
    """Delete USERNAME with all its mail."""
    if not yes:
        click.confirm(f"Delete {username} and all its mail?", abort=True)

    async def go(s: Any) -> None:
        u = await s.users.find(username)
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
    from wildduck.errors import NotFound

    u = await s.users.find(username)
    mbox = await s.mailboxes.find(u.id, path)
    if mbox is None:
        raise NotFound(f"{username} has no mailbox {path!r}")
    return mbox


@message.command("list")
@click.argument("username")
@click.option("--mailbox", "-m", default="INBOX", show_default=True)
@click.pass_obj
def message_list(obj: _Obj, username: str, mailbox: str) -> None:
    """List the messages of a mailbox: UID, size, internal date, flags, subject."""

    async def go(s: Any) -> None:
        mbox = await _mailbox(s, username, mailbox)
        for m in await s.messages.summaries(mbox.id):
            click.echo(f"{m.uid}\t{m.size}\t{m.internal_date.isoformat()}\t{' '.join(m.flags) or '-'}\t{m.subject}")

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
