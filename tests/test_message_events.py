"""`features.websocket.message_events` (issue 19): an `audit` event per relayed message on
`/ws/events`, never content, audio coalesced to about one event a second per session."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import trio
from trio_websocket import open_websocket_url

from conformance.mock_upstream import MockBehaviour
from tests.conftest import running

PHONE = "415-555-0132"
ON = "features:\n  websocket:\n    message_events: true\n"
AUDIO = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00\x01" * 400).decode()})
ITEM = json.dumps(
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"at {PHONE}"}]},
    }
)


async def _session_events(gw: Any, appends: int) -> tuple[list[dict[str, Any]], float]:
    """Events of one session (text item, `appends` audio appends), read from a real subscriber;
    and how long the appends took to send (the coalescing bound depends on it)."""
    events: list[dict[str, Any]] = []
    async with open_websocket_url(f"ws://127.0.0.1:{gw.port}/ws/events") as sub:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()  # session.created
            await ws.send_message(ITEM)
            began = trio.current_time()
            for _ in range(appends):
                await ws.send_message(AUDIO)
            took = trio.current_time() - began
            await ws.send_message(json.dumps({"type": "session.update", "session": {}}))
            while json.loads(await ws.get_message())["type"] != "session.updated":
                pass
        while True:
            event = json.loads(await sub.get_message())
            events.append(event)
            if event["payload"].get("event") == "session_end":
                return events, took


async def test_each_relayed_message_is_an_audit_event_without_content() -> None:
    async with running(MockBehaviour(), chain=["pii-detector"], extra=ON) as gw:
        events, took = await _session_events(gw, appends=200)
    messages = [e["payload"] for e in events if e["payload"].get("event") == "message"]
    assert PHONE not in json.dumps(events)
    item = next(m for m in messages if m["event_type"] == "conversation.item.create")
    assert item["direction"] == "input" and item["forwarded"] is True and item["size"] > 0
    assert item["decisions"] == [{"policy": "pii-detector", "action": "redact", "redacted_kinds": ["PHONE"]}]
    assert any(m["direction"] == "output" and m["event_type"] == "session.created" for m in messages)
    audio = [m for m in messages if m["event_type"] == "input_audio_buffer.append"]
    # Every append is counted, in one event at the first append and at most one a second after.
    assert sum(m["count"] for m in audio) == 200
    assert len(audio) <= 2 + math.ceil(took)
    assert all(m["session_id"] == events[0]["payload"]["session_id"] for m in messages)


async def test_off_by_default() -> None:
    async with running(MockBehaviour(), chain=["pii-detector"]) as gw:
        events, _ = await _session_events(gw, appends=3)
    assert not [e for e in events if e["payload"].get("event") == "message"]
    assert any(e["payload"].get("event") == "policy_decision" for e in events)
