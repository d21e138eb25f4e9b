"""A leg's writes from several tasks: one whole chunk at a time, in turn, over a real socket pair."""

from __future__ import annotations

import socket

import trio

from kt_trio.session.leg import Leg
from kt_trio.wire.transport import SocketTransport

CHUNK = 4 * 1024 * 1024  # far above a socket pair's buffers: the first writer blocks mid-chunk


def _pair() -> tuple[Leg, socket.socket]:
    ours, theirs = socket.socketpair()
    return Leg("client", SocketTransport(ours), max_message_size=CHUNK), theirs


async def _read_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        await trio.lowlevel.wait_readable(sock)
        out += sock.recv(n - len(out))
    return bytes(out)


async def test_concurrent_writers_never_interleave_and_go_in_turn() -> None:
    leg, peer = _pair()
    peer.setblocking(False)
    chunks = [bytes([i]) * CHUNK for i in range(3)]
    started: list[int] = []
    async with trio.open_nursery() as nursery:

        async def write(i: int) -> None:
            started.append(i)
            await leg.send(chunks[i])

        for i in range(3):
            nursery.start_soon(write, i)
            await trio.testing.wait_all_tasks_blocked()  # each writer reaches `send` in order
        received = await _read_exactly(peer, 3 * CHUNK)
    # Whole chunks, in the order their writers asked for the turn.
    assert received == b"".join(chunks[i] for i in started)
    assert not leg._writing  # the last writer gave the turn back
    peer.close()
    leg.close_transport()


async def test_a_cancelled_waiting_writer_does_not_hold_the_turn() -> None:
    leg, peer = _pair()
    peer.setblocking(False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(leg.send, b"a" * CHUNK)  # blocks: nobody reads yet
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.01) as waited:  # a second writer queues, then gives up
            await leg.send(b"never")
        assert waited.cancelled_caught
        first = await _read_exactly(peer, CHUNK)
    assert first == b"a" * CHUNK
    assert not leg._writing
    await leg.send(b"after")  # the turn is free again
    assert await _read_exactly(peer, 5) == b"after"
    peer.close()
    leg.close_transport()
