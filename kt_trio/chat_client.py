"""`python -m kt_trio chat`: a small Realtime client that shows one governed round trip.

It sends one user message and `response.create`, prints the streamed text as it arrives, any
`error` event (a policy block, a rate limit) and the usage of the response, then closes with 1000.
Light traffic, so it uses trio-websocket.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import trio
from trio_websocket import ConnectionClosed, open_websocket_url

# Big enough for a Realtime server's audio deltas; the demo never sends such, a real provider may.
_MAX_MESSAGE = 16 * 1024 * 1024


def _request(route: str, text: str) -> list[dict[str, Any]]:
    if route.endswith("/v1/responses"):
        return [{"type": "response.create", "model": None, "input": text}]
    return [
        {
            "type": "conversation.item.create",
            "event_id": "evt_chat_1",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        },
        {"type": "response.create", "event_id": "evt_chat_2", "response": {"output_modalities": ["text"]}},
    ]


async def chat(url: str, text: str, *, key: str | None = None, timeout: float = 30.0) -> int:
    headers = [(b"Authorization", f"Bearer {key}".encode())] if key else []
    route = url.split("?", 1)[0]
    out = sys.stdout
    with trio.move_on_after(timeout) as scope:
        try:
            async with open_websocket_url(
                url, extra_headers=headers, message_queue_size=64, max_message_size=_MAX_MESSAGE
            ) as ws:
                for event in _request(route, text):
                    if event.get("model", "") is None:
                        event.pop("model")
                    await ws.send_message(json.dumps(event))
                while True:
                    event = json.loads(await ws.get_message())
                    kind = event.get("type", "")
                    if kind == "session.created":
                        out.write(f"[session {event['session'].get('id', '?')}]\n")
                    elif kind.endswith("output_text.delta") or kind == "response.text.delta":
                        out.write(event.get("delta", ""))
                        out.flush()
                    elif kind == "error":
                        err = event.get("error", {})
                        out.write(f"\n[error {err.get('type')}/{err.get('code')}: {err.get('message')}]\n")
                    elif kind in ("response.done", "response.completed"):
                        usage = event.get("response", {}).get("usage") or {}
                        out.write(f"\n[{kind}: usage {json.dumps(usage)}]\n")
                        await ws.aclose(1000, "done")
                        return 0
        except ConnectionClosed as exc:
            reason = exc.reason
            out.write(f"\n[closed {reason.code if reason else '?'}: {reason.reason if reason else ''}]\n")
            return 1
        except OSError as exc:
            out.write(f"cannot connect to {url}: {exc}\n")
            return 1
    if scope.cancelled_caught:
        out.write(f"\n[no response.done within {timeout:g}s]\n")
    return 1
