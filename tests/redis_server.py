"""A private redis-server for tests: a free port, a temporary directory, nothing persisted.

`open_redis()` starts one and stops it on the way out; `kill()` is `kill -9` and `restart()`
brings it back on the same port (the failure tests). `command()` is a tiny RESP client for
assertions, so a test reads Redis without going through the code under test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

START_DEADLINE_SECS = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.proc: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await trio.lowlevel.open_process(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with trio.fail_after(START_DEADLINE_SECS):
            while True:
                try:
                    if await self.command("PING") == "PONG":
                        return
                except OSError:
                    pass
                await trio.sleep(0.02)

    async def kill(self) -> None:
        """kill -9, and wait until the port refuses."""
        assert self.proc is not None
        self.proc.kill()
        with trio.CancelScope(shield=True):
            await self.proc.wait()
        self.proc = None

    async def restart(self) -> None:
        if self.proc is not None:
            await self.kill()
        await self.start()

    async def command(self, *args: str | int) -> Any:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            out = f"*{len(args)}\r\n".encode()
            for a in args:
                data = str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(data), data)
            await stream.send_all(out)
            reader = _Reader(stream)
            return await reader.value()

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[_Subscription]:
        """A raw SUBSCRIBE connection (not an instance: it never lists itself as a listener)."""
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            args = ["SUBSCRIBE", *channels]
            out = f"*{len(args)}\r\n".encode()
            for a in args:
                out += b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode())
            await stream.send_all(out)
            reader = _Reader(stream)
            for _ in channels:
                await reader.value()  # the subscribe confirmations
            yield _Subscription(reader)


class _Subscription:
    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    async def message(self) -> tuple[str, str]:
        """The next published (channel, data)."""
        while True:
            kind, channel, data = await self.reader.value()
            if kind == "message":
                return channel, data


class _Reader:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise OSError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    async def value(self) -> Any:
        line = await self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += await self.stream.receive_some(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2 :]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [await self.value() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")


@asynccontextmanager
async def open_redis() -> AsyncIterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="kt_trio_redis_") as directory:
        server = RedisServer(directory)
        await server.start()
        try:
            yield server
        finally:
            if server.proc is not None:
                await server.kill()
