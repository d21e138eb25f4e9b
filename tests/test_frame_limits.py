"""Bounded work and memory per connection whatever the framing (issue 13), through real sockets:
a raw client speaks RFC 6455 to a real gateway in front of the mock provider."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from conformance.mock_upstream import MockBehaviour
from kt_trio.wire.frames import MAX_FRAGMENTS, Close, FrameReader, Message, Opcode, encode_frame
from tests.conftest import running, serve_process

KEY = base64.b64encode(b"0123456789abcdef").decode()
MASK = b"\x11\x22\x33\x44"


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One masked frame, as a client sends it; `fin=False` for a fragment that is not the last."""
    data = bytearray(encode_frame(opcode, payload, mask=MASK))
    if not fin:
        data[0] &= 0x7F
    return bytes(data)


class RawClient:
    """A WebSocket client that writes whatever frames it is told to, masked as RFC 6455 asks."""

    def __init__(self, stream: trio.SocketStream, rest: bytes) -> None:
        self.stream = stream
        self.reader = FrameReader(expect_masked=False, max_message_size=64 * 1024 * 1024)
        self.reader.feed(rest)

    @classmethod
    async def open(cls, port: int, path: str = "/v1/realtime") -> RawClient:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, "closed during the handshake"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(stream, rest)

    async def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True) -> None:
        await self.stream.send_all(frame(opcode, payload, fin=fin))

    async def _read(self) -> None:
        view = self.reader.pending_view()
        data = await self.stream.receive_some(65536 if view is None else min(len(view), 65536))
        assert data, "connection ended"
        if view is None:
            self.reader.feed(data)
        else:
            view[: len(data)] = data
            view.release()
            self.reader.commit(len(data))

    async def next_close(self) -> Close:
        """Reads (discarding messages) until the gateway's close frame."""
        while True:
            for ev in self.reader.events():
                if isinstance(ev, Close):
                    return ev
            await self._read()

    async def next_message(self) -> Message:
        while True:
            for ev in self.reader.events():
                if isinstance(ev, Message):
                    return ev
            await self._read()


async def test_message_in_many_fragments_within_the_caps_arrives_whole() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        client = await RawClient.open(gw.port)
        parts = [bytes([65 + i % 26]) * 200 for i in range(1000)]
        await client.send_frame(Opcode.TEXT, parts[0], fin=False)
        for part in parts[1:-1]:
            await client.send_frame(Opcode.CONTINUATION, part, fin=False)
        await client.send_frame(Opcode.CONTINUATION, parts[-1])
        echoed = await client.next_message()
        assert echoed.payload() == b"".join(parts)
        await client.stream.aclose()


async def test_too_many_fragments_close_with_1009_and_nothing_is_forwarded() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        client = await RawClient.open(gw.port)
        await client.send_frame(Opcode.TEXT, b"x", fin=False)
        with trio.move_on_after(30):  # the gateway closes long before; writes then fail
            try:
                for _ in range(MAX_FRAGMENTS + 10):
                    await client.send_frame(Opcode.CONTINUATION, b"x", fin=False)
            except trio.BrokenResourceError:
                pass
        close = await client.next_close()
        assert close.code == 1009 and "fragments" in close.reason
        assert gw.mock.connections[0].messages == []


# A peer flooding the gateway with frames that carry nothing (a message never finished with
# empty continuations; pings by the hundred) is closed with 1008, with the reason.
FLOODS = {
    "empty-continuations": (
        frame(Opcode.TEXT, b"{", fin=False) + frame(Opcode.CONTINUATION, b"", fin=False) * 1000,
        "empty continuation",
    ),
    "pings": (frame(Opcode.PING, b"p") * 500, "control frames"),
}


@pytest.mark.parametrize("flood", sorted(FLOODS))
async def test_floods_close_with_1008(flood: str) -> None:
    data, reason = FLOODS[flood]
    async with running(MockBehaviour(mode="echo")) as gw:
        client = await RawClient.open(gw.port)
        try:
            await client.stream.send_all(data)
        except trio.BrokenResourceError:
            pass
        close = await client.next_close()
        assert close.code == 1008 and reason in close.reason


async def test_invalid_utf8_closes_with_1007_before_anything_is_forwarded() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        client = await RawClient.open(gw.port)
        await client.send_frame(Opcode.TEXT, b'{"type":"x","t":"\xc3\x28"}')
        close = await client.next_close()
        assert close.code == 1007
        client = await RawClient.open(gw.port)
        await client.send_frame(Opcode.TEXT, b'{"type":"x",', fin=False)
        await client.send_frame(Opcode.CONTINUATION, b'"t":"\xff"}')
        close = await client.next_close()
        assert close.code == 1007
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert all(c.messages == [] for c in gw.mock.connections)


async def test_client_protocol_errors_never_open_the_breaker() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        for _ in range(8):  # the breaker's failure_threshold is 5
            client = await RawClient.open(gw.port)
            await client.send_frame(Opcode.TEXT, b"\xff\xfe")
            assert (await client.next_close()).code == 1007
            await client.stream.aclose()
        await gw.gateway.wait_sessions(lambda n: n == 0)
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("still served")
            assert await ws.get_message() == "still served"


def _all_read(port: int) -> bool:
    """No socket on local port `port` has unread bytes (/proc/net/tcp's rx_queue)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, queues = fields[1], fields[4]
        if int(local.split(":")[1], 16) == port and int(queues.split(":")[1], 16) != 0:
            return False
    return True


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


async def test_a_frame_header_does_not_allocate_the_frame(tmp_path: Path) -> None:
    """Each connection claims a 1,000,000-byte frame (under the 1 MiB limit) and sends 1 byte of it."""
    async with serve_process("--port", "0", ready=b"try it:", cwd=tmp_path) as (proc, out):
        port = int(re.search(rb"127\.0\.0\.1:(\d+)", out).group(1))
        with trio.fail_after(60):
            warm = [await RawClient.open(port) for _ in range(20)]
            before = _rss_kib(proc.pid)
            clients = [await RawClient.open(port) for _ in range(100)]
            header = bytes((0x81, 0x80 | 127)) + (1_000_000).to_bytes(8, "big") + MASK
            for client in clients:
                await client.stream.send_all(header + b"x")
            # Wait until the gateway has read every byte sent to it (the kernel's receive queue
            # of each of its sockets on this port is empty).
            while not _all_read(port):
                await trio.sleep(0.05)
            grown_mib = (_rss_kib(proc.pid) - before) / 1024
            # 100 x 1 MB claimed; the buffers hold what arrived (64 KiB each at first).
            assert grown_mib < 40, f"RSS grew {grown_mib:.0f} MiB"
            for client in [*warm, *clients]:
                await client.stream.aclose()
        os.kill(proc.pid, 15)
