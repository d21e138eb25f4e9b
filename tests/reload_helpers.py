"""Helpers for the config-reload tests: a gateway started from files, events, and log output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from kt_trio.config import resolve_secrets
from kt_trio.config.packs import load_packs
from kt_trio.mocks.realtime import MockBehaviour, MockUpstream, open_mock_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.server.reload import Reloader
from kt_trio.testing import RunningGateway, serve_gateway
from tests.conftest import config_yaml
from tests.test_policy_sessions import next_of, user_item

__all__ = ["next_of", "user_item"]  # one copy of the session helpers, from the policy tests

PHONE = "415-555-0132"


async def sent_upstream(ws: WebSocketConnection, mock: MockUpstream, conn: int, text: str) -> str:
    """Sends a user message on an open session; the text the provider received for it."""
    await ws.send_message(user_item(text))
    await next_of(ws, "conversation.item.added")
    received = mock.connections[conn].messages[-1]
    return str(json.loads(received)["item"]["content"][0]["text"])


async def new_session_sends(url: str, mock: MockUpstream, conn: int, text: str) -> str:
    """Opens a new session and sends a user message; the text the provider received."""
    async with open_websocket_url(url) as ws:
        await next_of(ws, "session.created")
        return await sent_upstream(ws, mock, conn, text)


@asynccontextmanager
async def gateway_from_files(paths: Sequence[Path], mock: MockUpstream) -> AsyncIterator[RunningGateway]:
    """A gateway started from config files as `serve --config` does, with its reloader."""
    configs = load_packs(paths)
    packs = [(c, resolve_secrets(c)) for c in configs]
    (config, secrets), more = packs[0], packs[1:]
    gateway = Gateway(config, secrets=secrets, more_packs=more)
    gateway.reloader = Reloader(gateway, [str(p) for p in paths])
    async with serve_gateway(gateway, mock=mock) as gw:
        yield gw


@asynccontextmanager
async def one_file_gateway(
    tmp_path: Path, chain: list[str]
) -> AsyncIterator[tuple[RunningGateway, MockUpstream, Path, WebSocketConnection]]:
    """A mock provider, `gw.yaml` with `chain`, a gateway started from it, and its system events."""
    config = tmp_path / "gw.yaml"
    async with open_mock_upstream(MockBehaviour()) as mock:
        config.write_text(config_yaml(mock.url, chain=chain, state_dir=tmp_path))
        async with gateway_from_files([config], mock) as gw, event_stream(gw.port) as events:
            yield gw, mock, config, events


@asynccontextmanager
async def event_stream(port: int, key: str | None = None) -> AsyncIterator[WebSocketConnection]:
    """The `system` events of a gateway (as an admin with `key`, else anonymously)."""
    headers = [("Authorization", f"Bearer {key}")] if key else []
    async with open_websocket_url(f"ws://127.0.0.1:{port}/ws/events?types=system", extra_headers=headers) as ws:
        yield ws


async def system_event(ws: WebSocketConnection, kind: str) -> dict[str, Any]:
    """The payload of the next `system` event of this kind on an event stream."""
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] == "system" and event["payload"]["event"] == kind:
            return dict(event["payload"])


async def read_until(proc: trio.Process, needle: bytes, seen: bytearray) -> str:
    """Reads the process's (merged) output until `needle` appears; the line holding it."""
    assert proc.stdout is not None
    while needle not in seen:
        chunk = await proc.stdout.receive_some(65536)
        assert chunk, f"the process ended before writing {needle!r}: {bytes(seen)[-2000:]!r}"
        seen += chunk
    at = seen.index(needle)
    start = seen.rfind(b"\n", 0, at) + 1
    end = seen.find(b"\n", at)
    line = bytes(seen[start : end if end >= 0 else len(seen)]).decode()
    del seen[: end + 1 if end >= 0 else len(seen)]
    return line
