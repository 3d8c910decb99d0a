"""One LMTP connection: drives :class:`wildduck.protocols.lmtp.server.LMTPServer` over a trio stream."""

from __future__ import annotations

import itertools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from wildduck.domain.delivery import Recipient
from wildduck.errors import DomainError, InvalidInput, MessageTooLarge, NotFound, QuotaExceeded
from wildduck.model import AppendResult
from wildduck.protocols.lmtp import server as lmtp
from wildduck.protocols.lmtp.server import reply_bytes

log = logging.getLogger(__name__)

_ids = itertools.count(1)
READ_SIZE = 65536
TLS_HANDSHAKE_TIMEOUT = 30.0


class DeliveryBackend(Protocol):
    """What the session needs from the domain (``wildduck.domain.delivery.DeliveryService`` provides it)."""

    async def resolve(self, address: str, size_hint: int | None = None) -> Recipient: ...

    async def deliver(self, raw: bytes, recipients: Sequence[Recipient]) -> list[AppendResult | DomainError]: ...


@dataclass(frozen=True, slots=True)
class LMTPSettings:
    hostname: str
    max_message_size: int
    max_recipients: int = 400
    max_line_length: int = 4096
    idle_timeout: float = 300.0


# domain errors -> replies, in one table: (at RCPT time, after DATA)
_ERROR_REPLIES: dict[type[DomainError], tuple[tuple[int, str, str], tuple[int, str, str]]] = {
    NotFound: ((550, "5.1.1", "Unknown recipient"), (550, "5.1.1", "Unknown recipient")),
    QuotaExceeded: ((452, "4.2.2", "Mailbox is over quota"), (552, "5.2.2", "Mailbox is over quota")),
    InvalidInput: ((501, "5.1.3", "Bad recipient address"), (554, "5.6.0", "Message refused")),
    MessageTooLarge: ((552, "5.3.4", "Message too large"), (552, "5.3.4", "Message too large")),
}
_TEMPORARY = (451, "4.3.0", "Temporary local error, try again later")


def _error_reply(exc: BaseException, *, after_data: bool, address: str) -> lmtp.Reply:
    for kind, replies in _ERROR_REPLIES.items():
        if isinstance(exc, kind):
            code, enhanced, text = replies[1 if after_data else 0]
            detail = f": {exc}" if isinstance(exc, InvalidInput) else ""
            return lmtp.Reply(code, enhanced, f"<{address}> {text}{detail}")
    code, enhanced, text = _TEMPORARY
    return lmtp.Reply(code, enhanced, f"<{address}> {text}")


class _Session:
    def __init__(self, stream: trio.abc.Stream, backend: DeliveryBackend, settings: LMTPSettings, peer: str,
                 tls_context: ssl.SSLContext | None) -> None:
        self.stream = stream
        self.backend = backend
        self.settings = settings
        self.peer = peer
        self.tls_context = tls_context
        self.cid = next(_ids)
        self.proto = lmtp.LMTPServer(
            settings.hostname,
            max_message_size=settings.max_message_size,
            max_recipients=settings.max_recipients,
            max_line_length=settings.max_line_length,
            tls_available=tls_context is not None,
        )
        self.out = bytearray()
        self.size_hint: int | None = None
        self.recipients: list[Recipient] = []

    async def flush(self) -> None:
        if self.out:
            data = bytes(self.out)
            self.out.clear()
            await self.stream.send_all(data)

    async def run(self) -> None:
        self.out += self.proto.greeting()
        while True:
            event = self.proto.next_event()
            if event is lmtp.NEED_DATA:
                await self.flush()
                data: bytes | bytearray = b""
                with trio.move_on_after(self.settings.idle_timeout) as idle:
                    data = await self.stream.receive_some(READ_SIZE)
                if idle.cancelled_caught:
                    await self.stream.send_all(reply_bytes(421, "4.4.2", f"{self.settings.hostname} idle timeout"))
                    return
                self.proto.receive_data(data)
                continue
            if event is lmtp.PAUSED:
                raise RuntimeError("the LMTP protocol waits for a reply the session did not send")
            if not await self.handle(event):
                await self.flush()
                return

    async def handle(self, event: object) -> bool:
        """Process one event; False ends the connection."""
        p = self.proto
        match event:
            case lmtp.Lhlo():
                self.recipients.clear()
                self.out += p.lhlo_reply()
            case lmtp.MailFrom(size=size):
                self.size_hint = size
                self.recipients.clear()
                self.out += p.send(lmtp.Reply(250, "2.1.0", "Sender OK"))
            case lmtp.RcptTo(address=address):
                await self.rcpt(address)
            case lmtp.DataStart():
                self.out += p.data_go_ahead()
            case lmtp.MessageData(data=data, error=error):
                await self.message(data, error)
            case lmtp.Rset():
                self.recipients.clear()
                self.out += reply_bytes(250, "2.0.0", "Reset OK")
            case lmtp.Noop():
                self.out += reply_bytes(250, "2.0.0", "OK")
            case lmtp.Vrfy():
                self.out += reply_bytes(252, "2.5.2", "Cannot VRFY user, but will accept message for delivery")
            case lmtp.StartTLS():
                return await self.starttls()
            case lmtp.Quit():
                self.out += p.send(lmtp.Reply(221, "2.0.0", f"{self.settings.hostname} closing connection"))
                return False
            case lmtp.CommandRejected(reply=reply, close=close):
                self.out += reply
                return not close
            case lmtp.ConnectionClosed():
                return False
        return True

    async def rcpt(self, address: str) -> None:
        try:
            recipient = await self.backend.resolve(address, self.size_hint)
        except DomainError as exc:
            log.info("lmtp %d: recipient <%s> refused: %s", self.cid, address, exc)
            self.out += self.proto.send(_error_reply(exc, after_data=False, address=address))
            return
        except Exception:
            log.exception("lmtp %d: resolving <%s> failed", self.cid, address)
            self.out += self.proto.send(_error_reply(RuntimeError(), after_data=False, address=address))
            return
        self.recipients.append(recipient)
        self.out += self.proto.send(lmtp.Reply(250, "2.1.5", f"<{address}> Recipient OK"))

    async def message(self, data: bytes, error: bytes | None) -> None:
        recipients, self.recipients = self.recipients, []
        self.proto.reset()
        if error is not None:
            self.out += error * len(recipients)
            return
        await self.flush()  # the 354 and earlier replies go out before the (possibly slow) store
        try:
            outcomes: Sequence[AppendResult | BaseException] = await self.backend.deliver(data, recipients)
        except DomainError as exc:
            log.info("lmtp %d: message refused: %s", self.cid, exc)
            outcomes = [exc] * len(recipients)
        except Exception as exc:
            log.exception("lmtp %d: delivery failed", self.cid)
            outcomes = [exc] * len(recipients)
        for rcpt, outcome in zip(recipients, outcomes, strict=True):
            if isinstance(outcome, AppendResult):
                self.out += reply_bytes(250, "2.0.0", f"<{rcpt.address}> Delivered (uid {outcome.uid})")
            else:
                self.out += self.proto.send(_error_reply(outcome, after_data=True, address=rcpt.address))
        log.info("lmtp %d: message of %d bytes for %d recipients from %s", self.cid, len(data), len(recipients),
                 self.peer)

    async def starttls(self) -> bool:
        assert self.tls_context is not None
        self.out += reply_bytes(220, "2.0.0", "Ready to start TLS")
        await self.flush()
        self.proto.discard_buffer()  # anything pipelined in plaintext is never executed
        tls = trio.SSLStream(self.stream, self.tls_context, server_side=True)
        with trio.move_on_after(TLS_HANDSHAKE_TIMEOUT) as scope:
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                log.info("lmtp %d: TLS handshake failed: %s", self.cid, exc)
                return False
        if scope.cancelled_caught:
            return False
        self.stream = tls
        self.proto.tls_started()
        self.recipients.clear()
        return True


async def serve_lmtp_connection(
    stream: trio.abc.Stream,
    backend: DeliveryBackend,
    settings: LMTPSettings,
    *,
    peer: str = "",
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Serve one LMTP connection until QUIT, EOF, idle timeout or a broken stream.

    Client misbehaviour never raises out of here; a 250 after DATA is sent only after the store committed.
    Cancellation (server shutdown) closes the connection; a delivery already handed to the store completes.
    """
    session = _Session(stream, backend, settings, peer, tls_context)
    try:
        await session.run()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        log.debug("lmtp %d: connection lost: %r", session.cid, exc)
    finally:
        await trio.aclose_forcefully(session.stream)
