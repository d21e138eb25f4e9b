"""Which fields of which OpenAI event carry text a policy must read, and how to rewrite them.

Pure code over parsed events (dicts straight from `json.loads`): no I/O, no copies. It covers
the Realtime GA names, the older beta names (`response.text.*`, `response.audio_transcript.*`,
`response.audio.delta`) and the Responses API WebSocket mode (`response.create` with top-level
`input`/`instructions`, `response.completed`, `response.refusal.*`).

A *slot* is `(container, key)`: the text is `container[key]` and a policy rewrites it in place
with `container[key] = new`. Slots are found once per message and handed to every policy, so a
redaction made by one policy is what the next one reads.

Events fall into four kinds for the provider → client direction:

- audio (`response.output_audio.delta`, beta `response.audio.delta`, and the client's
  `input_audio_buffer.append`): base64 payload and no text; recognised by `sniff_type`,
  never parsed.
- stream deltas (`STREAM_DELTA`): one piece of a content part's text; the streaming redactor
  sees them in order, keyed by `part_key`.
- stream ends (`STREAM_DONE`): the whole text of that part; the part's state is flushed.
- repeats (`REPEAT_TYPES`): items and responses that carry again, in full, text the deltas
  already streamed (`response.done`, `conversation.item.done`, ...). They are rewritten so the
  client sees the same redacted text everywhere, but not judged a second time.
"""

from __future__ import annotations

from typing import Any

Slot = tuple[Any, Any]
"""`(container, key)` with `container[key]` a `str`."""

AUDIO_TYPES = frozenset(
    {
        "input_audio_buffer.append",  # client → provider, GA and beta
        "response.output_audio.delta",  # GA
        "response.audio.delta",  # beta
    }
)

# delta type -> (stream family, field). The family keeps the text and the transcript of one
# content part apart (they are separate streams with separate `.done` events).
STREAM_DELTA: dict[str, tuple[str, str]] = {
    "response.output_text.delta": ("text", "delta"),  # Realtime GA and Responses
    "response.text.delta": ("text", "delta"),  # Realtime beta
    "response.output_audio_transcript.delta": ("transcript", "delta"),  # GA
    "response.audio_transcript.delta": ("transcript", "delta"),  # beta
    "conversation.item.input_audio_transcription.delta": ("input_transcript", "delta"),
    "response.function_call_arguments.delta": ("arguments", "delta"),
    "response.refusal.delta": ("refusal", "delta"),  # Responses
}

STREAM_DONE: dict[str, tuple[str, str]] = {
    "response.output_text.done": ("text", "text"),
    "response.text.done": ("text", "text"),
    "response.output_audio_transcript.done": ("transcript", "transcript"),
    "response.audio_transcript.done": ("transcript", "transcript"),
    "conversation.item.input_audio_transcription.completed": ("input_transcript", "transcript"),
    "response.function_call_arguments.done": ("arguments", "arguments"),
    "response.refusal.done": ("refusal", "refusal"),
}

# Families whose text the *user* produced: the transcription of the user's own speech reaches
# the client from the provider, but it is input content, so input policies read it too.
USER_FAMILIES = frozenset({"input_transcript"})

# Output events whose text is not streamed elsewhere (judged in full, like a done without deltas).
ORIGINAL_WHOLE_TYPES = frozenset({"conversation.item.input_audio_transcription.segment"})

# Output events that repeat, in full, text that was streamed (items, content parts, responses).
REPEAT_TYPES = frozenset(
    {
        "response.done",  # Realtime: response.output[]
        "response.completed",  # Responses: response.output[]
        "response.incomplete",
        "response.failed",
        "response.output_item.added",  # item
        "response.output_item.done",
        "response.content_part.added",  # part
        "response.content_part.done",
        "conversation.item.created",  # beta: item
        "conversation.item.added",  # GA: item
        "conversation.item.done",
        "conversation.item.retrieved",
    }
)

# Client events that carry text; every other client event (commit, clear, cancel, ...) has none.
INPUT_TEXT_TYPES = frozenset({"session.update", "conversation.item.create", "response.create", "response.inject"})

OUTPUT_TEXT_TYPES = frozenset(STREAM_DELTA) | frozenset(STREAM_DONE) | REPEAT_TYPES | ORIGINAL_WHOLE_TYPES

# Keys of a message content part that hold text (`audio` is base64 and never read).
_PART_TEXT_KEYS = ("text", "transcript", "refusal")


def _add(out: list[Slot], container: Any, key: Any) -> None:
    if isinstance(container[key], str):
        out.append((container, key))


def _content_slots(content: Any, out: list[Slot]) -> None:
    if not isinstance(content, list):
        return
    for i, part in enumerate(content):
        if isinstance(part, str):  # Responses input shorthand
            out.append((content, i))
        elif isinstance(part, dict):
            for k in _PART_TEXT_KEYS:
                if isinstance(part.get(k), str):
                    out.append((part, k))


def item_slots(item: Any, out: list[Slot]) -> None:
    """Text slots of one conversation item (Realtime) or input/output item (Responses)."""
    if not isinstance(item, dict):
        return
    t = item.get("type", "message")
    if t == "message":
        content = item.get("content")
        if isinstance(content, str):  # Responses: `{"role": "user", "content": "..."}`
            out.append((item, "content"))
        else:
            _content_slots(content, out)
    elif t in ("function_call", "mcp_call"):
        if isinstance(item.get("arguments"), str):
            out.append((item, "arguments"))
        if isinstance(item.get("output"), str):
            out.append((item, "output"))
    elif t in ("function_call_output", "custom_tool_call_output", "mcp_call_output"):
        output = item.get("output")
        if isinstance(output, str):
            out.append((item, "output"))
        else:
            _content_slots(output, out)
    elif t == "reasoning":
        _content_slots(item.get("summary"), out)
        _content_slots(item.get("content"), out)


def _items_slots(items: Any, out: list[Slot]) -> None:
    if isinstance(items, str):
        return
    if isinstance(items, list):
        for item in items:
            item_slots(item, out)


def input_slots(event: dict[str, Any]) -> list[Slot]:
    """Text slots of a client → provider event (empty for events that carry none)."""
    out: list[Slot] = []
    t = event.get("type")
    if t == "conversation.item.create":
        item_slots(event.get("item"), out)
    elif t == "session.update":
        session = event.get("session")
        if isinstance(session, dict) and isinstance(session.get("instructions"), str):
            out.append((session, "instructions"))
    elif t == "response.create":
        # Realtime nests the parameters under `response`; the Responses WebSocket mode puts
        # the POST /v1/responses fields at the top level. Read both.
        for holder in (event, event.get("response")):
            if not isinstance(holder, dict):
                continue
            if isinstance(holder.get("instructions"), str):
                out.append((holder, "instructions"))
            if isinstance(holder.get("input"), str):
                out.append((holder, "input"))
            else:
                _items_slots(holder.get("input"), out)
    elif t == "response.inject":
        _items_slots(event.get("input"), out)
    return out


def repeat_slots(event: dict[str, Any]) -> list[Slot]:
    """Text slots of an output event in `REPEAT_TYPES` (and `response.created`)."""
    out: list[Slot] = []
    if "item" in event:
        item_slots(event["item"], out)
    elif "part" in event:
        part = event["part"]
        if isinstance(part, dict):
            for k in _PART_TEXT_KEYS:
                if isinstance(part.get(k), str):
                    out.append((part, k))
    elif isinstance(event.get("response"), dict):
        _items_slots(event["response"].get("output"), out)
    return out


def output_slots(event: dict[str, Any]) -> list[Slot]:
    """Text slots of any provider → client event, whatever its kind."""
    t = event.get("type")
    spec = STREAM_DELTA.get(t) or STREAM_DONE.get(t)  # type: ignore[arg-type]
    if spec is not None:
        out: list[Slot] = []
        if isinstance(event.get(spec[1]), str):
            out.append((event, spec[1]))
        return out
    if t in ORIGINAL_WHOLE_TYPES:
        return [(event, "text")] if isinstance(event.get("text"), str) else []
    if t in REPEAT_TYPES:
        return repeat_slots(event)
    return []


def part_key(event: dict[str, Any], family: str) -> tuple[str, str, str, int]:
    """Identity of one streamed content part: (family, response_id, item_id, content_index).

    Responses-mode deltas carry no `response_id`; `item_id` is unique on its own there.
    """
    ci = event.get("content_index", event.get("output_index", 0))
    return (
        family,
        str(event.get("response_id") or ""),
        str(event.get("item_id") or ""),
        ci if isinstance(ci, int) else 0,
    )


def item_id_of(event: dict[str, Any]) -> str | None:
    iid = event.get("item_id")
    if isinstance(iid, str):
        return iid
    item = event.get("item")
    if isinstance(item, dict):
        item_id = item.get("id")
        if isinstance(item_id, str):
            return item_id
    return None
