"""Byte transports under a WebSocket leg: a raw non-blocking socket, or any trio Stream (TLS).

The relay's plain-TCP legs use the socket directly and wait with `wait_readable`/`wait_writable`
only when the kernel says EAGAIN: trio's own socket methods checkpoint after every successful call,
which measured 20 % of a relay's CPU (PERFORMANCE.md). To keep the scheduler fair and cancellation
prompt when data never runs dry, a transport still checkpoints every `_STREAK` successful calls.
A read that came back short of what was asked has emptied the socket, so the next read waits for
readiness first instead of trying and failing: one failed `recv` (a syscall and a Python
exception) less per batch, as asyncio's reader does it.
TLS legs (wss:// upstreams) go through `trio.SSLStream`, where the provider's latency dominates.
"""

from __future__ import annotations

import errno
import socket
from typing import NoReturn, Protocol

import trio

_wait_readable = trio.lowlevel.wait_readable  # once per batch read: looked up once, here

# Successful non-blocking calls between forced checkpoints: large enough that the per-call
# checkpoint cost disappears, small enough that a firehose peer cannot starve other sessions.
_STREAK = 16
# A plain read takes at most this much: a 64 KiB socket buffer's worth, so a burst of small
# events arrives in one read and is handled as one batch.
RECV_CHUNK = 65536


class Transport(Protocol):
    async def receive_some(self, max_bytes: int = RECV_CHUNK) -> bytes: ...

    async def receive_into(self, view: memoryview) -> int: ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class SocketTransport:
    """A connected stdlib socket in non-blocking mode."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # Each relayed event is a small write that must leave now, not after Nagle's delay.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self._streak = 0
        self._closed = False
        # The last read returned less than asked: the socket was empty after it.
        self._drained = False

    async def receive_some(self, max_bytes: int = RECV_CHUNK) -> bytes:
        sock = self.sock
        wait = self._drained
        while True:
            if wait:
                if self._closed:
                    raise trio.ClosedResourceError("transport closed")
                self._streak = 0
                await _wait_readable(sock)
            try:
                data = sock.recv(max_bytes)
            except BlockingIOError:
                wait = True
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            self._drained = len(data) < max_bytes
            # Every `_STREAK` reads that did not wait, a checkpoint (written out in each method:
            # an awaited helper cost a coroutine per read and per write).
            if not wait:
                self._streak += 1
                if self._streak >= _STREAK:
                    self._streak = 0
                    await trio.lowlevel.checkpoint()
            return data

    async def receive_into(self, view: memoryview) -> int:
        sock = self.sock
        wait = self._drained
        while True:
            if wait:
                if self._closed:
                    raise trio.ClosedResourceError("transport closed")
                self._streak = 0
                await _wait_readable(sock)
            try:
                n = sock.recv_into(view)
            except BlockingIOError:
                wait = True
                continue
            except OSError as exc:
                raise trio.BrokenResourceError(str(exc)) from exc
            self._drained = n < len(view)
            if not wait:
                self._streak += 1
                if self._streak >= _STREAK:
                    self._streak = 0
                    await trio.lowlevel.checkpoint()
            return n

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.sock
        try:
            n = sock.send(data)  # the common case: the kernel takes it all at once
        except BlockingIOError:
            n = 0
        except OSError as exc:
            _send_failed(exc)
        if n < len(data):
            view = memoryview(data)[n:]
            while view:
                try:
                    n = sock.send(view)
                except BlockingIOError:
                    await self._wait(trio.lowlevel.wait_writable)
                    continue
                except OSError as exc:
                    _send_failed(exc)
                view = view[n:]
        self._streak += 1
        if self._streak >= _STREAK:
            self._streak = 0
            await trio.lowlevel.checkpoint()

    async def _wait(self, waiter: object) -> None:
        if self._closed:
            raise trio.ClosedResourceError("transport closed")
        self._streak = 0
        await waiter(self.sock)  # type: ignore[operator]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # Wake any task blocked in wait_readable/writable on this socket with
            # ClosedResourceError instead of leaving it waiting on a closed descriptor.
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


def _send_failed(exc: OSError) -> NoReturn:
    if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.EBADF, errno.ENOTCONN):
        raise trio.BrokenResourceError(str(exc)) from exc
    raise exc


class StreamTransport:
    """Any trio Stream, for TLS legs."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream

    async def receive_some(self, max_bytes: int = RECV_CHUNK) -> bytes:
        return bytes(await self.stream.receive_some(max_bytes))

    async def receive_into(self, view: memoryview) -> int:
        data = await self.stream.receive_some(len(view))
        view[: len(data)] = data
        return len(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    def close(self) -> None:
        # Closing a TLS stream politely needs I/O; a forced close is what a cancelled session wants.
        sock_stream = getattr(self.stream, "transport_stream", None)
        sock = getattr(sock_stream, "socket", None)
        if sock is not None:
            sock.close()

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
