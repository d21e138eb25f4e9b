"""The front door against what attackers and careless clients send (issue 13), through real
sockets: a connection can only end itself, h2c is ignored without holding anything, RFC 6455
handshakes are checked strictly, paths are normalised before routing."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running, serve_process

KEY = base64.b64encode(b"0123456789abcdef").decode()


def upgrade(path: str = "/v1/realtime", *, version: str = "1.1", key: str | None = KEY, extra: bytes = b"") -> bytes:
    lines = [
        f"GET {path} HTTP/{version}".encode(),
        b"Host: 127.0.0.1",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Version: 13",
    ]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}".encode())
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Sends `request`; the status and everything after the response head (read to EOF unless 101)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        data = b""
        while b"\r\n\r\n" not in data or (b" 101 " not in data.split(b"\r\n", 1)[0] and not _complete(data)):
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: (\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


# -- a connection can only end itself ---------------------------------------------------------------


async def test_non_ascii_header_byte_is_forwarded_as_it_arrived_and_others_keep_going() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        async with open_websocket_url(gw.ws_url()) as other:
            await other.send_message("before")
            assert await other.get_message() == "before"
            status, _ = await exchange(gw.port, upgrade(extra=b"User-Agent: caf\xe9 \xff\r\n"))
            assert status == 101
            await other.send_message("after")
            assert await other.get_message() == "after"
        sent = next(c for c in gw.mock.connections if c.header("user-agent"))
        assert sent.header("user-agent").encode("latin-1") == b"caf\xe9 \xff"
        status, _ = await exchange(gw.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert status == 200


async def test_non_ascii_byte_in_a_subprotocol_does_not_stop_the_gateway() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        # Not a token (RFC 6455 §4.1): refused here rather than offered to the provider.
        status, _ = await exchange(gw.port, upgrade(extra=b"Sec-WebSocket-Protocol: realtime, x\xff\r\n"))
        assert status == 400
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("still here")
            assert await ws.get_message() == "still here"


# -- h2c ----------------------------------------------------------------------------------------------


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


H2C = (
    b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)
H2C_WS_SHAPED = (
    b"GET /v1/realtime HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def test_h2c_upgrades_are_ignored_without_holding_sockets_and_sigterm_still_exits(tmp_path: Path) -> None:
    async with serve_process("--port", "0", ready=b"try it:", cwd=tmp_path) as (proc, out):
        port = int(re.search(rb"127\.0\.0\.1:(\d+)", out).group(1))
        with trio.fail_after(90):
            status, body = await exchange(port, H2C)
            assert status == 200 and json.loads(body) == {"status": "ok"}  # answered as HTTP/1.1
            before = _fds(proc.pid)
            for i in range(300):
                status, _ = await exchange(port, H2C if i % 2 else H2C_WS_SHAPED)
                assert status in (200, 404)
            # Every connection above was closed by the client: the gateway lets go of all of them
            # (idle keep-alive ones within hypercorn's 5 s keep-alive timeout; on main each h2c
            # request held its socket forever).
            with trio.fail_after(20):
                while _fds(proc.pid) > before + 5:
                    await trio.sleep(0.1)
            status, _ = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert status == 200
            # One more, left open by the client, must not hold the shutdown.
            held = await trio.open_tcp_stream("127.0.0.1", port)
            await held.send_all(H2C_WS_SHAPED)
            proc.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await proc.wait() == 0
        await held.aclose()


async def test_http2_prior_knowledge_is_refused_with_505() -> None:
    async with running() as gw:
        status, _ = await exchange(gw.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert status == 505


# -- strict RFC 6455 handshake -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        upgrade(key="not-base64!"),
        upgrade(key=base64.b64encode(b"short").decode()),
        upgrade(key=base64.b64encode(b"0123456789abcdefX").decode()),
        upgrade(key=None),
        upgrade(extra=f"Sec-WebSocket-Key: {KEY}\r\n".encode()),  # two keys
        upgrade(version="1.0"),
    ],
    ids=["not-base64", "short", "17-bytes", "missing", "duplicate", "http-1.0"],
)
async def test_malformed_upgrades_are_refused_with_400(request_bytes: bytes) -> None:
    async with running() as gw:
        status, body = await exchange(gw.port, request_bytes)
        assert status == 400
        assert json.loads(body)["error"]["code"] == "bad_request"
        assert gw.mock.connections == []


async def test_other_websocket_versions_get_426() -> None:
    async with running() as gw:
        status, _ = await exchange(gw.port, upgrade().replace(b"Version: 13", b"Version: 8"))
        assert status == 426
