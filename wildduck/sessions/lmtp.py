"""One LMTP connection: drives :class:`wildduck.protocols.lmtp.server.LMTPServer` over a
:class:`~wildduck.sessions._runner.Connection` (read and send deadlines, STARTTLS, the 421 goodbye on shutdown)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from wildduck import metrics
from wildduck.domain.delivery import Recipient
from wildduck.errors import DomainError, InvalidInput, MessageTooLarge, NotFound, QuotaExceeded, StoreError
from wildduck.model import AppendResult
from wildduck.protocols.lmtp import server as lmtp
from wildduck.protocols.lmtp.server import reply_bytes
from wildduck.sessions._runner import Connection, Lifecycle, SessionEnded, run_session

log = logging.getLogger(__name__)



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


# domain errors (and StoreError) -> replies, in one table: (at RCPT time, after DATA)
_ERROR_REPLIES: dict[type[Exception], tuple[tuple[int, str, str], tuple[int, str, str]]] = {
    NotFound: ((550, "5.1.1", "Unknown recipient"), (550, "5.1.1", "Unknown recipient")),
    QuotaExceeded: ((452, "4.2.2", "Mailbox is over quota"), (552, "5.2.2", "Mailbox is over quota")),
    InvalidInput: ((501, "5.1.3", "Bad recipient address"), (554, "5.6.0", "Message refused")),
    MessageTooLarge: ((552, "5.3.4", "Message too large"), (552, "5.3.4", "Message too large")),
    StoreError: ((451, "4.3.0", "Storage is unavailable, try again later"),
                 (451, "4.3.0", "Storage is unavailable, try again later")),
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
    def __init__(self, conn: Connection, backend: DeliveryBackend, settings: LMTPSettings,
                 tls_context: ssl.SSLContext | None) -> None:
        self.conn = conn
        self.backend = backend
        self.settings = settings
        self.peer = conn.peer
        self.tls_context = tls_context
        self.proto = lmtp.LMTPServer(
            settings.hostname,
            max_message_size=settings.max_message_size,
            max_recipients=settings.max_recipients,
            max_line_length=settings.max_line_length,
            tls_available=tls_context is not None,
        )
        self.out = bytearray()
        self.size_hint: int | None = None
        self.sender = ""
        self.recipients: list[Recipient] = []

    def goodbye(self) -> bytes:
        return reply_bytes(421, "4.3.2", f"{self.settings.hostname} shutting down, try again later")

    async def flush(self) -> None:
        if self.out:
            data = bytes(self.out)
            self.out.clear()
            await self.conn.send(data)

    async def run(self) -> None:
        self.out += self.proto.greeting()
        while True:
            event = self.proto.next_event()
            if event is lmtp.NEED_DATA:
                await self.flush()
                data = await self.conn.receive(self.settings.idle_timeout)
                if data is None:
                    self.out += reply_bytes(421, "4.4.2", f"{self.settings.hostname} idle timeout")
                    raise SessionEnded
                self.proto.receive_data(data)
                continue
            if event is lmtp.PAUSED:
                raise RuntimeError("the LMTP protocol waits for a reply the session did not send")
            if not await self.handle(event):
                raise SessionEnded

    async def handle(self, event: object) -> bool:
        """Process one event; False ends the connection."""
        p = self.proto
        match event:
            case lmtp.Lhlo():
                self.recipients.clear()
                self.out += p.lhlo_reply()
            case lmtp.MailFrom(address=sender, size=size):
                self.size_hint = size
                self.sender = sender
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
            reply = _error_reply(exc, after_data=False, address=address)
            metrics.DELIVERIES.labels(str(reply.code)).inc()
            log.info("from <%s> to <%s>: refused at RCPT, %d %s: %s", self.sender, address, reply.code,
                     reply.enhanced, exc)
            self.out += self.proto.send(reply)
            return
        except StoreError as exc:
            log.error("from <%s> to <%s>: storage failed at RCPT: %s", self.sender, address, exc)
            self.out += self.proto.send(_error_reply(exc, after_data=False, address=address))
            return
        self.recipients.append(recipient)
        self.out += self.proto.send(lmtp.Reply(250, "2.1.5", f"<{address}> Recipient OK"))

    async def message(self, data: bytes, error: bytes | None) -> None:
        recipients, self.recipients = self.recipients, []
        self.proto.reset()
        if error is not None:
            self.out += error * len(recipients)
            log.info("from <%s>: message refused after DATA for %d recipients: %s", self.sender, len(recipients),
                     error.decode("ascii", "replace").strip())
            return
        await self.flush()  # the 354 and earlier replies go out before the (possibly slow) store
        try:
            outcomes: Sequence[AppendResult | BaseException] = await self.backend.deliver(data, recipients)
        except DomainError as exc:
            outcomes = [exc] * len(recipients)
        except StoreError as exc:
            log.error("from <%s>: storage failed: %s", self.sender, exc)
            outcomes = [exc] * len(recipients)
        except Exception as exc:  # a bug: the sender retries later (451), the connection survives
            log.exception("from <%s>: delivery failed", self.sender)
            outcomes = [exc] * len(recipients)
        for rcpt, outcome in zip(recipients, outcomes, strict=True):
            if isinstance(outcome, AppendResult):
                self.out += reply_bytes(250, "2.0.0", f"<{rcpt.address}> Delivered (uid {outcome.uid})")
                metrics.DELIVERIES.labels("250").inc()
                log.info("from <%s> to <%s>: 250 delivered, %d bytes, uid %d", self.sender, rcpt.address,
                         len(data), outcome.uid)
            else:
                reply = _error_reply(outcome, after_data=True, address=rcpt.address)
                self.out += self.proto.send(reply)
                metrics.DELIVERIES.labels(str(reply.code)).inc()
                log.info("from <%s> to <%s>: %d %s after DATA: %s", self.sender, rcpt.address, reply.code,
                         reply.enhanced, outcome)

    async def starttls(self) -> bool:
        assert self.tls_context is not None
        self.out += reply_bytes(220, "2.0.0", "Ready to start TLS")
        await self.flush()
        self.proto.discard_buffer()  # anything pipelined in plaintext is never executed
        try:
            if not await self.conn.start_tls(self.tls_context):
                return False
        except trio.BrokenResourceError as exc:
            log.info("TLS handshake failed: %s", exc)
            return False
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
    send_timeout: float = 60.0,
    lifecycle: Lifecycle | None = None,
) -> None:
    """Serve one LMTP connection until QUIT, EOF, idle timeout, a broken stream or shutdown (``421``).

    Client misbehaviour never raises out of here; a 250 after DATA is sent only after the store committed.
    A delivery already handed to the store completes; shutdown interrupts only a wait for the client.
    """
    conn = Connection(stream, peer, send_timeout=send_timeout, lifecycle=lifecycle or Lifecycle())
    await run_session(_Session(conn, backend, settings, tls_context), "lmtp")
