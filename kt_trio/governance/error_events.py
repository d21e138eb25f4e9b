"""Error events the gateway itself sends to a client, in the provider's own `error` shape.

OpenAI's Realtime and Responses WebSocket servers report a refused client event as
`{"type":"error","event_id":"...","error":{"type":...,"code":...,"message":...,"event_id":...}}`,
where `error.event_id` echoes the client event that caused it. Clients and SDKs already route that
shape to their error handlers, so a message the gateway refuses (rate limit, budget) is reported
the same way instead of inventing a gateway-specific envelope. DESIGN.md fixes this shape for
`policy_violation`; this module builds it for the governance codes.
"""

from __future__ import annotations

import json
import re
import uuid

# `"event_id":"..."` near the head: clients that put `event_id` early (most do) cost a regex, not a
# parse. Same 256-byte head window and character set as `kt_trio.protocol.sniff`.
_EVENT_ID_AT_HEAD = re.compile(rb'"event_id"\s*:\s*"([A-Za-z0-9_.:\-]{1,128})"')
_HEAD = 256


def new_event_id() -> str:
    """A server event id in OpenAI's style (`event_...`), marked `kt` so logs show who sent it."""
    return "event_kt" + uuid.uuid4().hex[:20]


def client_event_id(data: bytes | bytearray | memoryview) -> str | None:
    """The client event's `event_id`, for echoing in an error; None when absent or unreadable.

    Only the refusal path calls this (never the forwarding path), so the full-parse fallback
    for an `event_id` placed after a large audio payload is paid only by refused messages.
    """
    m = _EVENT_ID_AT_HEAD.search(bytes(data[:_HEAD]))
    if m is not None:
        return m.group(1).decode("ascii")
    try:
        obj = json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("event_id"), str):
        return obj["event_id"]
    return None


def error_event(
    error_type: str,
    code: str,
    message: str,
    client_event_id: str | None,
    *,
    event_id: str | None = None,
) -> bytes:
    """The serialised `error` event (compact JSON, UTF-8), ready to send as a text message."""
    return json.dumps(
        {
            "type": "error",
            "event_id": event_id if event_id is not None else new_event_id(),
            "error": {
                "type": error_type,
                "code": code,
                "message": message,
                "event_id": client_event_id,
            },
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
