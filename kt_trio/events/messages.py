"""Records → event stream messages (DESIGN.md "Event stream message"). Pure: no I/O, no trio.

Every message is `{"type": <EventType>, "ts": <RFC 3339>, "payload": {...}}`. The payloads are
built field by field from the frozen records in `kt_trio.records`, never by dumping a record
whole, so a field added to a record later cannot leak onto the stream without someone deciding
it belongs there. What never appears: message content (`MessageSeen.content`), keys or tokens.

Mapping (one record may give two messages):

- `SessionStarted` → `audit` `{"event": "session_start", ...}`
- `SessionSummary` → `audit` `{"event": "session_end", ...}` and `usage` `{"scope": "session", ...}`
- `PolicyDecision` → `audit` `{"event": "policy_decision", ...}`
- `ResponseUsage` → `usage` `{"scope": "response", ...}`
- `BudgetAlert` → `budget` `{"event": "threshold_crossed" | "exceeded", ...}`
- `SpendAlert` → `budget` `{"event": ..., "used_usd", "max_usd", "budget": "key" | "team", ...}`
- `BreakerTransition` → `circuit_breaker` `{"target", "from", "to", "reason"}`
- `SystemEvent` → `system` `{"event": "startup" | "shutdown" | "config_reloaded" | "config_rejected", ...}`
- `MessagesRelayed` → `audit` `{"event": "message", ...}`: only with
  `features.websocket.message_events` (the session emits it then), audio coalesced to about one
  a second per session and direction, never content.
- `AdminAction` → `system` `{"event": "admin_action", "action", "admin", "target", ...}`: every
  admin API action (`kt_trio.admin`), by the admin key's name.
- `MessageSeen` → nothing. It is one record per relayed message (an audio session sends ~50 a
  second), so on the stream it would fill every subscriber's buffer and push out the audit,
  usage and breaker events the stream exists for; and it may carry forwarded text when the
  audit logger's `include_content` is on. It belongs to the audit log only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from attrs import field, frozen

from kt_trio.records import (
    AdminAction,
    BreakerTransition,
    BudgetAlert,
    MessageSeen,
    MessagesRelayed,
    PolicyDecision,
    Record,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
    SpendAlert,
    TokenUsage,
)

EventType = Literal["audit", "usage", "budget", "circuit_breaker", "system", "lagged"]
EVENT_TYPES: frozenset[str] = frozenset({"audit", "usage", "budget", "circuit_breaker", "system", "lagged"})

SystemKind = Literal[
    "startup",
    "shutdown",
    "config_reloaded",
    "config_rejected",
    "state_unavailable",
    "state_available",
    "audit_unavailable",
    "audit_available",
    "model_unpriced",
]


@frozen
class SystemEvent:
    """A gateway-wide happening for the `system` event type. Lives here, not in `kt_trio.records`,
    because only the event stream consumes it. `details` must hold no secrets (a config reload
    reports a file name and a count, never values)."""

    kind: SystemKind
    # Tuples of strings: a rejected reload's errors (`FILE:LINE:COL: path: message`, no values).
    details: Mapping[str, str | int | float | bool | tuple[str, ...] | None] = field(factory=dict)


Publishable = Record | SystemEvent


def rfc3339(epoch: float) -> str:
    """`2026-11-03T12:00:00.123Z`: UTC, millisecond precision (RFC 3339 §5.6)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(event_type: str, payload: Mapping[str, Any], ts: float) -> str:
    """The wire text of one message. Compact separators: every subscriber gets these bytes."""
    return json.dumps(
        {"type": event_type, "ts": rfc3339(ts), "payload": payload}, separators=(",", ":"), ensure_ascii=False
    )


def lagged_payload(missed: int) -> dict[str, int]:
    return {"missed": missed}


def usage_payload(usage: TokenUsage) -> dict[str, int | float]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": usage.cached_tokens,
        "cached_audio_tokens": usage.cached_audio_tokens,
        "input_text_tokens": usage.input_text_tokens,
        "input_audio_tokens": usage.input_audio_tokens,
        "input_image_tokens": usage.input_image_tokens,
        "output_text_tokens": usage.output_text_tokens,
        "output_audio_tokens": usage.output_audio_tokens,
        "transcription_seconds": usage.transcription_seconds,
    }


def to_events(session_id: str | None, record: Publishable) -> list[tuple[EventType, dict[str, Any]]]:
    """The (type, payload) messages a record becomes; empty for records not published.

    `session_id` is the reporter's tag; it names the session of records that do not carry one.
    """
    if isinstance(record, ResponseUsage):
        return [
            (
                "usage",
                {
                    "scope": "response",
                    "session_id": record.session_id,
                    "target": record.target,
                    "model": record.model,
                    "response_id": record.response_id,
                    "kind": record.kind,
                    "key_name": record.key_name,
                    "team": record.team,
                    "usage": usage_payload(record.usage),
                    "cost_usd": record.cost_usd,
                },
            )
        ]
    if isinstance(record, PolicyDecision):
        return [
            (
                "audit",
                {
                    "event": "policy_decision",
                    "session_id": session_id,
                    "policy": record.policy,
                    "action": record.action,
                    "direction": record.direction,
                    "reason": record.reason,
                    "score": record.score,
                    "redacted_kinds": list(record.redacted_kinds),
                    "event_type": record.event_type,
                    "event_id": record.event_id,
                },
            )
        ]
    if isinstance(record, SessionStarted):
        return [
            (
                "audit",
                {
                    "event": "session_start",
                    "session_id": record.session_id,
                    "route": record.route,
                    "target": record.target,
                    "model": record.model,
                    "client_ip": record.client_ip,
                    "user_agent": record.user_agent,
                    "key_name": record.key_name,  # the key's name, never the key
                    "team": record.team,
                    "started_at": rfc3339(record.started_at),
                },
            )
        ]
    if isinstance(record, SessionSummary):
        return [
            (
                "audit",
                {
                    "event": "session_end",
                    "session_id": record.session_id,
                    "route": record.route,
                    "target": record.target,
                    "model": record.model,
                    "client_ip": record.client_ip,
                    "key_name": record.key_name,
                    "team": record.team,
                    "started_at": rfc3339(record.started_at),
                    "duration_secs": record.duration_secs,
                    "messages_in": record.messages_in,
                    "messages_out": record.messages_out,
                    "bytes_in": record.bytes_in,
                    "bytes_out": record.bytes_out,
                    "close_code": record.close_code,
                    "close_reason": record.close_reason,
                    "closed_by": record.closed_by,
                },
            ),
            (
                "usage",
                {
                    "scope": "session",
                    "session_id": record.session_id,
                    "target": record.target,
                    "model": record.model,
                    "key_name": record.key_name,
                    "team": record.team,
                    "usage": usage_payload(record.usage),
                    "cost_usd": record.cost_usd,
                },
            ),
        ]
    if isinstance(record, BudgetAlert):
        return [
            (
                "budget",
                {
                    "event": "exceeded" if record.exceeded else "threshold_crossed",
                    "session_id": record.session_id,
                    "threshold": record.threshold,
                    "used_tokens": record.used_tokens,
                    "max_tokens": record.max_tokens,
                    "exceeded": record.exceeded,
                },
            )
        ]
    if isinstance(record, SpendAlert):
        return [
            (
                "budget",
                {
                    "event": "exceeded" if record.exceeded else "threshold_crossed",
                    "session_id": record.session_id,
                    "threshold": record.threshold,
                    "used_usd": round(record.used_usd, 10),
                    "max_usd": record.max_usd,
                    "exceeded": record.exceeded,
                    "budget": record.budget,
                    "key_name": record.name if record.budget == "key" else None,
                    "team": record.team,
                },
            )
        ]
    if isinstance(record, BreakerTransition):
        return [
            (
                "circuit_breaker",
                {"target": record.target, "from": record.from_state, "to": record.to_state, "reason": record.reason},
            )
        ]
    if isinstance(record, SystemEvent):
        return [("system", {"event": record.kind, **record.details})]
    if isinstance(record, MessagesRelayed):
        return [
            (
                "audit",
                {
                    "event": "message",
                    "session_id": record.session_id,
                    "direction": record.direction,
                    "event_type": record.event_type,
                    "size": record.size,
                    "count": record.count,
                    "forwarded": record.forwarded,
                    "decisions": [
                        {"policy": d.policy, "action": d.action, "redacted_kinds": list(d.redacted_kinds)}
                        for d in record.decisions
                    ],
                },
            )
        ]
    if isinstance(record, AdminAction):
        details = {k: v for k, v in record.details.items() if k not in ("event", "action", "admin", "target")}
        return [
            (
                "system",
                {
                    "event": "admin_action",
                    "action": record.action,
                    "admin": record.admin,
                    "target": record.target,
                    **details,
                },
            )
        ]
    if isinstance(record, MessageSeen):
        return []  # per-message volume and possible content: see the module docstring
    return []
