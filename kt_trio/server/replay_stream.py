"""A trio Stream that first replays bytes already read, then reads its socket.

The front door reads a connection's request head to decide who serves it; a plain HTTP request
goes to hypercorn, which must parse it from its first byte. hypercorn's `TCPServer` only needs
`receive_some`, `send_all`, `send_eof`, `aclose` and the `socket` attribute for the peer address.
"""

from __future__ import annotations

from typing import Any

import trio


class ReplayStream(trio.abc.HalfCloseableStream):
    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix
        # hypercorn reads the peer's address from `socket`; under TLS it is the transport's.
        inner: Any = getattr(stream, "transport_stream", stream)
        self.socket = inner.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            n = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        if isinstance(self._stream, trio.abc.HalfCloseableStream):
            await self._stream.send_eof()
        # A TLS stream cannot half-close: hypercorn's close then closes it whole.

    async def aclose(self) -> None:
        await self._stream.aclose()
