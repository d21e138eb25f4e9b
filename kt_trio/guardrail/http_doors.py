"""The external guardrail at the HTTP doors: `/v1/chat/completions` and `/v1/responses`, whole
and streamed (DESIGN.md "Guardrail hook": whole texts, never each delta).

- Requests: the texts of the request (chat: each message's content; Responses: `instructions`
  and the `input` text or its items' texts) after the policy chain, before anything goes
  upstream. Block: 400 `policy_violation` naming `external-guardrail`; redact: the rewritten
  text goes upstream.
- Whole answers: each choice's message (chat) or each `output_text` part of the response's
  message items (Responses). Block: 400; redact: the client gets the rewritten text.
- Streamed answers: their text streams to the client as it comes (after the chain's own
  split-safe checks), and the completed text of each choice (chat) or of the response
  (Responses) is judged when the upstream finishes it. Until the verdict the gateway holds what
  ends the stream: the chunks from the first `finish_reason` on and `[DONE]` (chat), the events
  from the first `response.output_text.done` on and `response.completed` (Responses). Block: the
  held end is dropped and the stream ends as a policy block mid-stream does (chat: an error chunk
  with `finish_reason: "content_filter"`, then `[DONE]`; Responses: an `error` event and no
  `response.completed`), so the client never sees the answer completed. Redact: what already
  streamed cannot be recalled; the held events that repeat the whole text (Responses'
  `.done`, `output_item.done`, `response.completed`) carry the redacted text, and the decision
  is recorded as `flag` for chat (its stream repeats no text). A streamed text over
  `MAX_STREAM_CHARS` is not sent whole: `on_error` decides, as for a service that failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import attrs

from kt_trio.chat import sse
from kt_trio.guardrail.client import Context, Guardrail, GuardVerdict
from kt_trio.guardrail.edge import judge_slots
from kt_trio.policies.engine import Blocked
from kt_trio.protocol.errors import dumps
from kt_trio.records import PolicyDecision

Slot = tuple[Any, Any]  # (container, key): container[key] is a str

# Characters of one streamed answer kept for the guardrail (the whole answer is what it judges;
# the chain's own after-stream pass keeps a quarter of this). Past it `on_error` decides.
MAX_STREAM_CHARS = 1 << 20


def context(route: str, model: Any, exchange_id: str, key: Any) -> Context:
    return Context(
        route=route,
        model=str(model) if model is not None else None,
        session_id=exchange_id,
        key_name=getattr(key, "name", None),
        team=getattr(key, "team", None),
    )


def _parts(holder: Any, key: str, kinds: tuple[str, ...]) -> Iterator[Slot]:
    content = holder.get(key) if isinstance(holder, dict) else None
    if isinstance(content, str):
        yield holder, key
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("type", kinds[0]) in kinds:
                yield part, "text"


def responses_request_slots(request: dict[str, Any]) -> list[Slot]:
    """The texts of a `/v1/responses` request: `instructions`, and `input` (a string, or items
    whose `content` is a string or text parts)."""
    slots: list[Slot] = []
    if isinstance(request.get("instructions"), str):
        slots.append((request, "instructions"))
    items = request.get("input")
    if isinstance(items, str):
        slots.append((request, "input"))
    elif isinstance(items, list):
        for item in items:
            slots.extend(_parts(item, "content", ("input_text", "text", "output_text")))
    return [s for s in slots if s[0][s[1]]]


def responses_output_slots(output: Any) -> list[Slot]:
    """The answer texts of a response object's `output`: the `output_text` parts of its message
    items (tool call arguments are the chain's, not the guardrail's)."""
    slots: list[Slot] = []
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and item.get("type", "message") == "message":
            slots.extend(_parts(item, "content", ("output_text",)))
    return [s for s in slots if s[0][s[1]]]


async def guard_texts(
    guardrail: Guardrail | None,
    ctx: Context,
    slots: list[Slot],
    direction: Literal["input", "output"],
    decisions: list[PolicyDecision],
    event_type: str,
) -> bool:
    """The guardrail over whole texts: True when it redacted some (in place); raises `Blocked`
    (the chain's `Stop`) on a block."""
    if guardrail is None or not slots or not guardrail.applies(direction):
        return False
    judged = await judge_slots(guardrail, slots, direction, ctx, event_type, None)
    decisions.extend(judged.decisions)
    if judged.stop is not None:
        raise Blocked(guardrail.name, judged.stop.reason or "blocked by the external guardrail", "block")
    return judged.changed


@attrs.define
class StreamText:
    """The text of a streamed answer as the client received it, per choice (chat) or output
    part (Responses), bounded by `MAX_STREAM_CHARS`."""

    texts: dict[Any, list[str]] = attrs.field(factory=dict)
    size: int = 0
    over: bool = False

    def add(self, key: Any, text: str) -> None:
        if not text or self.over:
            return
        self.size += len(text)
        if self.size > MAX_STREAM_CHARS:
            self.over = True
            self.texts.clear()
            return
        self.texts.setdefault(key, []).append(text)

    def slots(self) -> list[Slot]:
        whole = {k: "".join(v) for k, v in self.texts.items()}
        return [(whole, k) for k in whole if whole[k]]


async def guard_stream_end(
    guardrail: Guardrail,
    ctx: Context,
    slots: list[Slot],
    over: bool,
    decisions: list[PolicyDecision],
    event_type: str,
    *,
    redact_is_flag: bool,
) -> dict[str, str]:
    """Judges a streamed answer's completed texts (`slots`). Raises `Blocked` on a block; returns
    {original text: redacted text} for what the guardrail redacted. With `redact_is_flag` (a stream
    that repeats no text) a redaction is recorded as `flag`: the text has already gone out."""
    if over:
        failed = GuardVerdict("block", f"streamed text over {MAX_STREAM_CHARS} characters", failed=True)
        on_error = guardrail.settings.on_error
        decisions.append(
            PolicyDecision(
                policy=guardrail.name,
                action="block" if on_error == "block" else "allow",
                direction="output",
                reason=f"{failed.reason}; on_error={on_error}",
                event_type=event_type,
            )
        )
        if on_error == "block":
            raise Blocked(guardrail.name, failed.reason, "block")
        return {}
    before = [c[k] for c, k in slots]
    found: list[PolicyDecision] = []
    try:
        await guard_texts(guardrail, ctx, slots, "output", found, event_type)
    finally:
        for d in found:
            if redact_is_flag and d.action == "redact":
                d = attrs.evolve(d, action="flag", reason=d.reason + " (streamed: already sent)", redacted_kinds=())
            decisions.append(d)
    return {old: c[k] for old, (c, k) in zip(before, slots, strict=True) if c[k] != old}


def _replace(value: Any, replaced: dict[str, str]) -> Any:
    if isinstance(value, str):
        return replaced.get(value, value)
    if isinstance(value, list):
        return [_replace(v, replaced) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, replaced) for k, v in value.items()}
    return value


def patch_events(held: list[bytes], replaced: dict[str, str]) -> list[bytes]:
    """Held Responses events with every string equal to a redacted text replaced by its
    redaction (`.done` texts, `output_item.done` and `response.completed` outputs)."""
    if not replaced:
        return held
    out: list[bytes] = []
    parser = sse.SseParser()
    for raw in held:
        for ev in parser.feed(raw):
            if ev.data is None:
                out.append(ev.raw)
                continue
            try:
                obj = json.loads(ev.data)
            except ValueError:
                out.append(ev.raw)
                continue
            new = _replace(obj, replaced)
            out.append(ev.raw if new == obj else sse.encode(dumps(new), event=str(new.get("type"))))
    return out
