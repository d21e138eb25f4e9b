"""One side of a session: its transport, its frame reader, and what has been said on it.

A leg is written to by more than one task (the pump relaying the other side, the pump reading
this side when it answers a ping or reports a blocked message, the keepalive task), so writes go
through a lock; one chunk of frames is one `send_all`. The lock is taken with `acquire_nowait()`
first because `acquire()` checkpoints even when the lock is free (PERFORMANCE.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import trio

from kt_trio.wire.frames import Close, Event, FrameReader, Opcode, close_payload, encode_frame
from kt_trio.wire.transport import RECV_CHUNK, Transport

LegName = Literal["client", "upstream"]


class PeerGone(Exception):
    """The peer's TCP connection ended (EOF or reset) without a close handshake."""


class Leg:
    def __init__(
        self,
        name: LegName,
        transport: Transport,
        *,
        max_message_size: int,
        initial: bytes = b"",
    ) -> None:
        self.name = name
        self.transport = transport
        # The client leg is our server side (frames arrive masked and leave unmasked); the
        # upstream leg is our client side (the reverse).
        self.masks_outgoing = name == "upstream"
        self.reader = FrameReader(expect_masked=name == "client", max_message_size=max_message_size)
        self._lock = trio.Lock()
        self._initial = initial
        self.close_sent = False
        self.close_received: Close | None = None
        # Set when a write was cut off mid-frame (cancelled or failed): the framing on this
        # connection can no longer be trusted, so no close frame is attempted on it.
        self.write_broken = False
        self.eof = False
        # Keepalive: when our unanswered ping was sent (trio time), None when none is pending.
        self.ping_sent_at: float | None = None
        self.pongs_received = 0  # answers to our pings, for diagnostics and tests

    # -- reading -------------------------------------------------------------------------------

    async def receive(self) -> list[Event]:
        """The next batch of complete events; raises PeerGone on EOF or a reset."""
        reader = self.reader
        if self._initial:
            data, self._initial = self._initial, b""
            reader.feed(data)
            events = reader.events()
            if events:
                return events
        while True:
            view = reader.pending_view()
            try:
                if view is not None:
                    with view:  # released before commit, which may grow the buffer under it
                        n = await self.transport.receive_into(view)
                    if n:
                        reader.commit(n)
                else:
                    data = await self.transport.receive_some(RECV_CHUNK)
                    n = len(data)
                    if n:
                        reader.feed(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.eof = True
                raise PeerGone(self.name) from exc
            if not n:
                self.eof = True
                raise PeerGone(self.name)
            events = reader.events()
            if events:
                return events

    # -- writing -------------------------------------------------------------------------------

    def frame(self, opcode: int, payload: bytes | bytearray | memoryview) -> bytes:
        return encode_frame(opcode, payload, mask=os.urandom(4) if self.masks_outgoing else None)

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        lock = self._lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            if self.write_broken:
                raise trio.BrokenResourceError(f"{self.name} leg unusable")
            ok = False
            try:
                await self.transport.send_all(data)
                ok = True
            finally:
                if not ok:
                    self.write_broken = True
        finally:
            lock.release()

    async def send_chunks(self, chunks: Sequence[bytes | bytearray]) -> None:
        if len(chunks) == 1:
            await self.send(chunks[0])
        elif chunks:
            await self.send(b"".join(chunks))

    async def send_close(self, code: int, reason: str) -> None:
        if self.close_sent or self.write_broken:
            return
        self.close_sent = True
        await self.send(self.frame(Opcode.CLOSE, close_payload(code, reason)))

    def close_transport(self) -> None:
        self.transport.close()
