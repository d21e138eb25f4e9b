"""Events the gateway itself sends, built in the provider's own shapes.

DESIGN.md ("What a client sees") fixes the error shape:
`{"type":"error","event_id":"...","error":{"type":...,"code":...,"message":...,"event_id":...}}`
— the Realtime `error` server event, with `error.event_id` naming the client event at fault.
The Responses WebSocket mode's own error event has `status` and `error.param`
(`{"type":"error","status":400,"error":{"type","code","message","param"}}`); for that
protocol we add those two keys to the same object, so a client of either API finds what its SDK
reads and the contract's keys are always there.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

Protocol = Literal["realtime", "responses"]


def new_event_id() -> str:
    """A server event id in OpenAI's style (`event_` + random), marked as the gateway's own."""
    return "event_kt" + os.urandom(10).hex()


def dumps(obj: Any) -> bytes:
    """The one serialisation of rewritten or generated events: compact, UTF-8, not ASCII-escaped."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_event(
    *,
    error_type: str,
    code: str | None,
    message: str,
    client_event_id: str | None = None,
    protocol: Protocol = "realtime",
    event_id: str | None = None,
) -> bytes:
    """The provider's `error` event shape (DESIGN.md "What a client sees"), for every refusal the
    gateway reports in-band: policy violations, invalid JSON, rate limits, budgets."""
    error: dict[str, Any] = {
        "type": error_type,
        "code": code,
        "message": message,
        "event_id": client_event_id,
    }
    event: dict[str, Any] = {"type": "error", "event_id": event_id or new_event_id(), "error": error}
    if protocol == "responses":
        error["param"] = None
        event["status"] = 400
    return dumps(event)


def invalid_request(message: str, *, client_event_id: str | None = None, protocol: Protocol = "realtime") -> bytes:
    """What a client gets back for a message that is not a JSON object with a `type`."""
    return error_event(
        error_type="invalid_request_error",
        code="invalid_json",
        message=message,
        client_event_id=client_event_id,
        protocol=protocol,
    )


def policy_violation(
    policy: str, message: str, *, client_event_id: str | None = None, protocol: Protocol = "realtime"
) -> bytes:
    """What a client gets for a blocked message: `error.code` is the policy's name."""
    return error_event(
        error_type="policy_violation",
        code=policy,
        message=message,
        client_event_id=client_event_id,
        protocol=protocol,
    )


def response_cancel(response_id: str | None) -> bytes:
    """Realtime `response.cancel`; with an id so concurrent responses are left alone."""
    if response_id:
        return dumps({"type": "response.cancel", "event_id": new_event_id(), "response_id": response_id})
    return dumps({"type": "response.cancel", "event_id": new_event_id()})


def item_delete(item_id: str) -> bytes:
    """Realtime `conversation.item.delete`: removes a blocked user turn from the model's context."""
    return dumps({"type": "conversation.item.delete", "event_id": new_event_id(), "item_id": item_id})


def rate_limit_error_event(
    client_event_id: str | None,
    messages_per_minute: float | None = None,
    *,
    event_id: str | None = None,
    protocol: Protocol = "realtime",
) -> bytes:
    """The `error` event telling the client its message was dropped by the rate limit."""
    limit = f" of {messages_per_minute:g} messages per minute" if messages_per_minute is not None else ""
    return error_event(
        error_type="rate_limit_exceeded",
        code="rate_limit_exceeded",
        message=f"Rate limit{limit} exceeded; the message was not forwarded.",
        client_event_id=client_event_id,
        event_id=event_id,
        protocol=protocol,
    )


def budget_exceeded_error_event(
    client_event_id: str | None,
    used_tokens: int | None = None,
    max_total_tokens: int | None = None,
    *,
    event_id: str | None = None,
    whose: str = "Session token budget",
    until: str = "in this session",
    protocol: Protocol = "realtime",
) -> bytes:
    """The `error` event telling the client a `response.create` was refused by a budget (the
    session's, or with `whose`/`until` its gateway key's daily one)."""
    detail = (
        f" ({used_tokens} of {max_total_tokens} tokens used)"
        if used_tokens is not None and max_total_tokens is not None
        else ""
    )
    return error_event(
        error_type="budget_exceeded",
        code="budget_exceeded",
        message=f"{whose} exceeded{detail}; no new responses can be created {until}.",
        client_event_id=client_event_id,
        event_id=event_id,
        protocol=protocol,
    )
