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
from kt_trio.mocks.realtime import MockUpstream
from kt_trio.server.gateway import Gateway
from kt_trio.server.reload import Reloader
from kt_trio.testing import RunningGateway, serve_gateway

PHONE = "415-555-0132"


def user_item(text: str, event_id: str = "evt_user") -> str:
    return json.dumps(
        {
            "type": "conversation.item.create",
            "event_id": event_id,
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        }
    )


async def next_of(ws: WebSocketConnection, kind: str) -> dict[str, Any]:
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] == kind:
            return event


async def sent_upstream(ws: WebSocketConnection, mock: MockUpstream, conn: int, text: str) -> str:
    """Sends a user message on an open session; the text the provider received for it."""
    await ws.send_message(user_item(text))
    await next_of(ws, "conversation.item.added")
    received = mock.connections[conn].messages[-1]
    return str(json.loads(received)["item"]["content"][0]["text"])


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
async def event_stream(port: int) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(f"ws://127.0.0.1:{port}/ws/events?types=system") as ws:
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
