"""One side of a session: its transport, its frame reader, and what has been said on it.

A leg is written to by more than one task (the pump relaying the other side, the pump reading
this side when it answers a ping or reports a blocked message, the keepalive task), so writes are
serialised; one chunk of frames is one `send_all`. The writer's turn is a flag and a parking lot
rather than a `trio.Lock`: a free lock is taken without a checkpoint either way, but trio's Lock
also records its owner and a parking-lot breaker per acquire, which the relay paid on every batch.
Waiting writers queue in the parking lot and are handed the turn in order (as trio's Lock does).
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
        # True while a write is under way; writers that find it set wait in `_waiting`, and the
        # finishing writer hands its turn to the first of them (the flag stays set).
        self._writing = False
        self._waiting = trio.lowlevel.ParkingLot()
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
        if self._writing:
            # Cancelled while waiting: the turn was never handed to us, nothing to give back.
            await self._waiting.park()
        else:
            self._writing = True
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
            if self._waiting:
                self._waiting.unpark()  # the turn passes on; `_writing` stays True
            else:
                self._writing = False

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
