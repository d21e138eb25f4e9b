"""The audit store failing (issue 13): a full disk never ends the gateway and never lets an
unrecorded message through; it recovers by itself when the disk does.

The disk fills for real: the gateway runs as a process whose file size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored so writes fail with EFBIG, as on a full disk) the test lowers and raises again
from outside with `prlimit`. SQLite then fails its commits exactly as it does when the disk is
full. Every client here is a real socket client on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from conformance.mock_upstream import MockBehaviour, open_mock_upstream
from tests.helpers import http_get, rejected, rows, samples, served_port

TOKEN = "events-token-for-the-test"
FULL = 1  # bytes: any write past the first byte of a file fails, as on a full disk
pytestmark = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs prlimit (Linux)")


def _ignore_sigxfsz() -> None:
    # Without this a write over the limit kills the process (SIGXFSZ) instead of failing.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _disk(pid: int, *, full: bool) -> None:
    soft = FULL if full else resource.RLIM_INFINITY
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, resource.RLIM_INFINITY))


def _config(state: Path, mock_url: str, durability: str) -> str:
    return f"""
gateway:
  state_dir: {state}
providers:
  targets:
    - id: rt
      provider: openai
      model: gpt-realtime
      base_url: {mock_url}/v1/realtime
    - id: chat
      provider: openai
      model: gpt-4o-mini
      base_url: http://127.0.0.1:1/v1
policies:
  chain: [audit-logger]
policy:
  audit-logger:
    durability: {durability}
    log_all_access: true
features:
  websocket:
    require_auth: true
    tokens: [{TOKEN}]
"""


@asynccontextmanager
async def gateway_process(tmp_path: Path, mock_url: str, durability: str) -> AsyncIterator[tuple[trio.Process, int]]:
    config = tmp_path / "c.yaml"
    config.write_text(_config(tmp_path / "state", mock_url, durability))
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "kt_trio", "serve", "--config", str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=_ignore_sigxfsz,
    )
    try:
        yield proc, await served_port(proc)
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def audit_available(port: int) -> float:
    status, body = await http_get(port, "/metrics")
    assert status == 200
    return samples(body.decode())[("kt_audit_available", ())]


async def wait_available(port: int, value: float) -> None:
    """Until `kt_audit_available` reads `value` (the writer retries every second)."""
    while await audit_available(port) != value:
        await trio.sleep(0.1)


async def system_events(ws: WebSocketConnection, seen: list[str]) -> None:
    while True:
        message = json.loads(await ws.get_message())
        if message["type"] == "system":
            seen.append(message["payload"]["event"])


async def post_chat(port: int) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    await stream.send_all(head.encode() + body)
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    return int(head_bytes.split()[1]), json.loads(payload)


async def test_strict_full_disk_closes_1011_refuses_503_and_recovers(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
            async with gateway_process(tmp_path, mock.url, "strict") as (proc, port):
                seen: list[str] = []
                async with (
                    open_websocket_url(f"ws://127.0.0.1:{port}/ws/events?token={TOKEN}") as events,
                    trio.open_nursery() as nursery,
                ):
                    nursery.start_soon(system_events, events, seen)
                    async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                        await ws.send_message("recorded")
                        assert await ws.get_message() == "recorded"
                        _disk(proc.pid, full=True)
                        await ws.send_message("not recorded")
                        with pytest.raises(ConnectionClosed) as closed:
                            await ws.get_message()
                        assert (closed.value.reason.code, closed.value.reason.reason) == (1011, "audit unavailable")
                    assert mock.connections[0].messages == ["recorded"]  # never forwarded unrecorded
                    # New sessions and requests are refused while the store fails; the process lives.
                    refusal = await rejected(f"ws://127.0.0.1:{port}/v1/realtime")
                    assert refusal.status_code == 503
                    assert json.loads(refusal.body or b"{}")["error"]["code"] == "audit_unavailable"
                    status, answer = await post_chat(port)
                    assert status == 503 and answer["error"]["code"] == "audit_unavailable"
                    assert proc.returncode is None and (await http_get(port, "/healthz"))[0] == 200
                    assert await audit_available(port) == 0
                    # The disk has room again: the log comes back by itself.
                    _disk(proc.pid, full=False)
                    await wait_available(port, 1)
                    async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                        await ws.send_message("after recovery")
                        assert await ws.get_message() == "after recovery"
                    while "audit_available" not in seen:
                        await trio.sleep(0.05)
                    nursery.cancel_scope.cancel()
                assert seen.count("audit_unavailable") == 1 and seen.index("audit_unavailable") < seen.index(
                    "audit_available"
                )
                assert proc.returncode is None
    inputs = forwarded_inputs(tmp_path)
    # "recorded" and "after recovery" reached the provider and are in the log; "not recorded"
    # is in the log too (committed on recovery), as seen and not forwarded.
    assert [m["forwarded"] for m in inputs] == [True, False, True]


async def test_batch_full_disk_keeps_records_in_memory_then_closes_at_the_queue_bound(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
            async with gateway_process(tmp_path, mock.url, "batch") as (proc, port):
                async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                    await ws.send_message("before")
                    assert await ws.get_message() == "before"
                    _disk(proc.pid, full=True)
                    echoed = 0
                    closed: ConnectionClosed | None = None
                    # Forwarded while the queue has room (the records wait in memory), then the
                    # session is closed rather than forward what could not be recorded.
                    for i in range(5000):
                        try:
                            await ws.send_message(f"m{i}")
                            assert await ws.get_message() == f"m{i}"
                        except ConnectionClosed as exc:
                            closed = exc
                            break
                        echoed += 1
                    assert closed is not None, "the session forwarded past the audit queue's bound"
                    assert (closed.reason.code, closed.reason.reason) == (1011, "audit unavailable")
                    assert echoed > 50  # it did go on while the records fitted in memory
                refusal = await rejected(f"ws://127.0.0.1:{port}/v1/realtime")
                assert refusal.status_code == 503
                assert proc.returncode is None
                _disk(proc.pid, full=False)
                await wait_available(port, 1)
                # Every message forwarded during the outage is in the log once the disk recovered
                # (the last one may have reached the provider, but not its echo the client).
                forwarded = mock.connections[0].messages
                assert forwarded[: echoed + 1] == ["before", *(f"m{i}" for i in range(echoed))]
                assert len(forwarded) <= echoed + 2
                async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                    await ws.send_message("after")
                    assert await ws.get_message() == "after"
                status, _ = await http_get(port, "/healthz")
                assert status == 200
                # Committed within the flush interval: every message that reached the provider,
                # during the outage too, and the one after it.
                while len(forwarded_inputs(tmp_path)) < len(forwarded) + 1:
                    await trio.sleep(0.1)
                assert len(forwarded_inputs(tmp_path)) == len(forwarded) + 1


def forwarded_inputs(tmp_path: Path) -> list[dict[str, Any]]:
    return [d for kind, _, d in rows(tmp_path / "state") if kind == "message" and d["direction"] == "input"]
