"""Where the external guardrail judges: whole texts at the WebSocket session and HTTP edges.

The judging engine stays pure; this is the async step around it. It runs after the policy chain
(so the service sees text the chain already redacted) on:

- client -> provider events that carry text: `conversation.item.create` (the item's text parts),
  `session.update` (`instructions`), `response.create` (`instructions` and input items). The
  session holds the message (and the client's reading) until the verdict: block drops it and
  the client gets the usual `policy_violation` error event; redact forwards the rewritten text;
  `action: close` ends the session with 1008; `flag` records and forwards.
- completed assistant texts: `response.output_text.done` / `response.text.done` (`text`),
  `response.output_audio_transcript.done` / `response.audio_transcript.done` (`transcript`).
  Deltas are never sent to the service (they have already streamed by then, after the chain's
  own checks). On block the client gets an error event and the `.done` event's text is emptied;
  on redact the `.done` text is the redacted one; `response.done` carries the same replacement
  for that part (remembered per item and part, at most `_MEMORY` of them).
- `/v1/chat/completions`: each message's text in the request before it is forwarded, and each
  choice's text in a non-streamed completion (`kt_trio.chat`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import trio

from kt_trio.guardrail.client import NAME, Context, Guardrail, GuardVerdict
from kt_trio.protocol.errors import dumps, error_event
from kt_trio.records import PolicyDecision

Slot = tuple[Any, Any]  # (container, key): container[key] is a str

CLIENT_TYPES = frozenset({"conversation.item.create", "session.update", "response.create"})
DONE_FIELDS = {
    "response.output_text.done": "text",
    "response.text.done": "text",
    "response.output_audio_transcript.done": "transcript",
    "response.audio_transcript.done": "transcript",
}
# Parts whose `.done` text the guardrail replaced, remembered for `response.done`: a response
# has a handful of parts; this bounds what an upstream that never sends `response.done` leaves.
_MEMORY = 64


def _item_slots(item: Any) -> Iterator[Slot]:
    if not isinstance(item, dict):
        return
    content = item.get("content")
    if isinstance(content, str):
        yield item, "content"
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part, "text"


def client_event_slots(event: dict[str, Any]) -> list[Slot]:
    """The texts of a client event the guardrail judges."""
    t = event.get("type")
    slots: list[Slot] = []
    if t == "conversation.item.create":
        slots.extend(_item_slots(event.get("item")))
    elif t in ("session.update", "response.create"):
        body = event.get("session" if t == "session.update" else "response")
        if isinstance(body, dict):
            if isinstance(body.get("instructions"), str):
                slots.append((body, "instructions"))
            items = body.get("input")
            if isinstance(items, list):
                for item in items:
                    slots.extend(_item_slots(item))
    return [s for s in slots if s[0][s[1]]]


def chat_request_slots(body: dict[str, Any]) -> list[Slot]:
    """The texts of a chat completions request: every message's content."""
    slots: list[Slot] = []
    messages = body.get("messages")
    if isinstance(messages, list):
        for m in messages:
            slots.extend(_item_slots(m))
    return [s for s in slots if s[0][s[1]]]


def chat_completion_slots(body: dict[str, Any]) -> list[Slot]:
    """The texts of a non-streamed chat completion: each choice's message content."""
    slots: list[Slot] = []
    choices = body.get("choices")
    if isinstance(choices, list):
        for c in choices:
            if isinstance(c, dict):
                slots.extend(_item_slots(c.get("message")))
    return [s for s in slots if s[0][s[1]]]


@attrs.define
class Judged:
    """What the guardrail concluded on the texts of one message."""

    stop: GuardVerdict | None = None  # a block (with `action` block or close)
    changed: bool = False  # some text was redacted in place
    decisions: list[PolicyDecision] = attrs.field(factory=list)


async def judge_slots(
    guardrail: Guardrail,
    slots: list[Slot],
    direction: Literal["input", "output"],
    ctx: Context,
    event_type: str | None,
    event_id: str | None,
) -> Judged:
    """Judge every slot's text at once (bounded by the guardrail's own concurrency), then apply:
    redactions in place, the first block as `stop` (unless `action: flag`)."""
    verdicts: list[GuardVerdict | None] = [None] * len(slots)

    async def one(i: int, text: str) -> None:
        verdicts[i] = await guardrail.judge(text, direction, ctx)

    async with trio.open_nursery() as nursery:
        for i, (container, key) in enumerate(slots):
            nursery.start_soon(one, i, container[key])
    out = Judged()
    action = guardrail.settings.action
    for (container, key), v in zip(slots, verdicts, strict=True):
        assert v is not None
        if v.action == "block":
            out.decisions.append(_decision(action, direction, v, event_type, event_id))
            if action != "flag" and out.stop is None:
                out.stop = v
        elif v.action == "redact" and v.redactions:
            container[key] = v.apply(container[key])
            out.changed = True
            out.decisions.append(_decision("redact", direction, v, event_type, event_id))
    return out


def _decision(
    action: str, direction: Literal["input", "output"], v: GuardVerdict, t: str | None, eid: str | None
) -> PolicyDecision:
    reason = v.reason or ("guardrail blocked the text" if v.action == "block" else "guardrail redacted the text")
    kinds = tuple(dict.fromkeys(kind for _, _, kind in v.redactions))
    return PolicyDecision(
        policy=NAME,
        action=action,  # type: ignore[arg-type]
        direction=direction,
        reason=reason,
        score=None,
        redacted_kinds=kinds if action == "redact" else (),
        event_type=t,
        event_id=eid,
    )


@attrs.define
class GuardResult:
    """For the session: what to forward (None: drop it), events for the client, a close."""

    forward: bytes | bytearray | None
    to_client: list[bytes] = attrs.field(factory=list)
    decisions: list[PolicyDecision] = attrs.field(factory=list)
    close: bool = False


class SessionGuard:
    """One WebSocket session's use of the guardrail (the `.done` replacements it remembers)."""

    def __init__(self, guardrail: Guardrail, ctx: Context, protocol: Literal["realtime", "responses"]) -> None:
        self.guardrail = guardrail
        self.ctx = ctx
        self.protocol = protocol
        self._replaced: dict[tuple[str, int], str] = {}

    def wants(self, event_type: str | None, from_client: bool) -> bool:
        if from_client:
            return event_type in CLIENT_TYPES and self.guardrail.applies("input")
        return (event_type in DONE_FIELDS or (event_type == "response.done" and bool(self._replaced))) and (
            self.guardrail.applies("output")
        )

    def _error(self, verdict: GuardVerdict, client_event_id: str | None) -> bytes:
        return error_event(
            error_type="policy_violation",
            code=NAME,
            message=f"Blocked by the {NAME} policy: {verdict.reason or 'not allowed'}",
            client_event_id=client_event_id,
            protocol=self.protocol,
        )

    async def on_client(self, data: bytes | bytearray, event_type: str | None) -> GuardResult:
        event = _load(data)
        if event is None:
            return GuardResult(data)
        eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        slots = client_event_slots(event)
        if not slots:
            return GuardResult(data)
        judged = await judge_slots(self.guardrail, slots, "input", self.ctx, event_type, eid)
        if judged.stop is not None:
            close = self.guardrail.settings.action == "close"
            return GuardResult(None, [self._error(judged.stop, eid)], judged.decisions, close)
        return GuardResult(dumps(event) if judged.changed else data, [], judged.decisions)

    async def on_upstream(self, data: bytes | bytearray, event_type: str | None) -> GuardResult:
        event = _load(data)
        if event is None:
            return GuardResult(data)
        if event_type == "response.done":
            return GuardResult(self._patch_response_done(event, data))
        assert event_type is not None
        field = DONE_FIELDS[event_type]
        if not isinstance(event.get(field), str) or not event[field]:
            return GuardResult(data)
        judged = await judge_slots(self.guardrail, [(event, field)], "output", self.ctx, event_type, None)
        key = (str(event.get("item_id")), int(event.get("content_index") or 0))
        to_client: list[bytes] = []
        if judged.stop is not None:
            event[field] = ""
            to_client.append(self._error(judged.stop, None))
        if judged.stop is not None or judged.changed:
            if len(self._replaced) >= _MEMORY:
                self._replaced.pop(next(iter(self._replaced)))
            self._replaced[key] = event[field]
            return GuardResult(
                dumps(event),
                to_client,
                judged.decisions,
                judged.stop is not None and (self.guardrail.settings.action == "close"),
            )
        return GuardResult(data, [], judged.decisions)

    def _patch_response_done(self, event: dict[str, Any], data: bytes | bytearray) -> bytes | bytearray:
        response = event.get("response")
        changed = False
        if isinstance(response, dict) and isinstance(response.get("output"), list):
            for item in response["output"]:
                if not isinstance(item, dict) or not isinstance(item.get("content"), list):
                    continue
                for index, part in enumerate(item["content"]):
                    text = self._replaced.pop((str(item.get("id")), index), None)
                    if text is None or not isinstance(part, dict):
                        continue
                    for field in ("text", "transcript"):
                        if isinstance(part.get(field), str):
                            part[field] = text
                            changed = True
        return dumps(event) if changed else data


def _load(data: bytes | bytearray) -> dict[str, Any] | None:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None
