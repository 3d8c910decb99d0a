"""COMPRESS=DEFLATE (RFC 4978): a trio stream that deflates what it sends and inflates what it receives.

Raw deflate (no zlib header) both ways; every ``send_all`` ends with a sync flush so the peer can act on it at
once. Inflation is bounded: one ``receive_some`` returns at most ``max_bytes`` (64 KiB by default) of inflated
data and keeps the rest compressed, so a small hostile input cannot expand into unbounded memory.
"""

from __future__ import annotations

import zlib

import trio

#: inflated bytes handed out per receive_some when the caller sets no limit
CHUNK = 64 * 1024


class DeflateStream(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream, *, pending: bytes = b"", level: int = 6) -> None:
        """Wrap ``inner``; ``pending`` is compressed input already read from it before the switch."""
        self.inner = inner
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._inflate = zlib.decompressobj(-15)
        self._pending = pending

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        raise trio.ClosedResourceError("a compressed IMAP stream has no half-close")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        limit = max_bytes or CHUNK
        while True:
            if self._inflate.unconsumed_tail:
                data = self._inflate.unconsumed_tail
            elif self._pending:
                data, self._pending = self._pending, b""
            elif self._inflate.eof:
                return b""  # the peer ended its deflate stream: nothing more can follow
            else:
                data = bytes(await self.inner.receive_some(CHUNK))
                if not data:
                    return b""
            try:
                out = self._inflate.decompress(data, limit)
            except zlib.error as exc:
                raise trio.BrokenResourceError(f"corrupt compressed input: {exc}") from exc
            if out:
                return out

    async def aclose(self) -> None:
        await self.inner.aclose()
