"""A streamed `/v1/responses` through the output policies, one event at a time (sans-IO).

`ResponsesFilter` reads the Responses API's server-sent events as they arrive:

- `response.output_text.delta` and `response.function_call_arguments.delta`: each item's text
  is one stream through chat's split-safe redactor (`ChatPolicies.feed`: the message text by
  its `output_index`; a function call's arguments JSON-aware, keyed `(output_index, 0)`), so
  a phone number split across two deltas still arrives redacted; the tail it holds back follows
  in an extra delta event just before the item's `.done` event.
- Events that repeat the whole text (`response.output_text.done`, `response.content_part.done`,
  `response.output_item.done`, `response.completed`) get the same redaction, whole, so no
  event carries what a delta hid.
- `response.completed` gives the usage.
- A block raises `policy.Stop`; the caller ends the stream with `error_event` (no
  `response.completed`, DESIGN.md).

An event no policy changed leaves as the bytes it came in as. Once an extra event was inserted,
later events' `sequence_number`s are shifted by the count, so the client's numbering stays
strictly increasing.

`ChatToResponses` turns chat completion chunks (Anthropic's stream, already translated by
`kt_trio.chat.anthropic.StreamTranslator`) into those same Responses events.
"""

from __future__ import annotations

import json
from typing import Any

from kt_trio.chat import sse
from kt_trio.chat.policy import ChatPolicies, PartKey, Stop, ToolArguments, judge_slots
from kt_trio.chat.responses_items import (
    call_item,
    message_item,
    output_slots,
    response_id_of,
    response_object,
    usage_of,
)
from kt_trio.policies.pii import PiiDetector
from kt_trio.protocol.errors import dumps
from kt_trio.records import PolicyDecision, TokenUsage

TEXT_DELTA = "response.output_text.delta"
ARGS_DELTA = "response.function_call_arguments.delta"
_DONE_OF = {"response.output_text.done": TEXT_DELTA, "response.function_call_arguments.done": ARGS_DELTA}
_ENDS = ("response.completed", "response.incomplete", "response.failed")
_WHOLE_TEXT = frozenset(
    {*_DONE_OF, "response.content_part.done", "response.output_item.done", *_ENDS}
)  # events that repeat a whole text


def encode(event: dict[str, Any]) -> bytes:
    return sse.encode(dumps(event), event=str(event.get("type")))


def error_event(code: str, message: str, sequence_number: int) -> bytes:
    """The Responses stream's `error` event (its own shape: `code`, `message`, `param`)."""
    return encode(
        {"type": "error", "code": code, "message": message, "param": None, "sequence_number": sequence_number}
    )


class ResponsesFilter:
    def __init__(self, policies: ChatPolicies) -> None:
        self.policies = policies
        # Whole-text redaction of the events that repeat a streamed text: PII that redacts only
        # (a block fired on the deltas already).
        self._redactors = tuple(
            p for p in policies.output_policies if isinstance(p, PiiDetector) and p.settings.action == "redact"
        )
        self.decisions: list[PolicyDecision] = []
        self.usage: TokenUsage | None = None
        self.response_id: str | None = None
        self.done = False  # the response ended (completed, incomplete or failed)
        self.last_sequence = 0
        self._shift = 0  # events inserted so far: added to every later sequence_number
        # For the external guardrail (`guardrail.http_doors`): the events that repeat a whole
        # text have begun (the stream's end, held until the verdict), and the ending event.
        self.closing = False
        self.final: dict[str, Any] | None = None

    def on_event(self, ev: sse.SseEvent) -> list[bytes]:
        if ev.data is None:
            return [ev.raw]
        try:
            obj = json.loads(ev.data)
        except ValueError:
            return [ev.raw]  # not ours to refuse: forward as it came
        if not isinstance(obj, dict):
            return [ev.raw]
        return self.on_object(obj, ev.raw)

    def on_object(self, obj: dict[str, Any], raw: bytes | None) -> list[bytes]:
        """One event (parsed); `raw` is its SSE bytes as they arrived, or None when translated."""
        kind = obj.get("type")
        extra: list[dict[str, Any]] = []
        changed = False
        if kind in _WHOLE_TEXT:
            self.closing = True
        if kind in (TEXT_DELTA, ARGS_DELTA):
            key = _key(obj)
            delta = obj.get("delta")
            if key is not None and isinstance(delta, str) and delta:
                emit = self.policies.feed(key, delta, self.decisions)
                if emit != delta:
                    obj["delta"] = emit
                    changed = True
        elif kind in _DONE_OF:
            key = _key(obj)
            tail = self.policies.flush(key, self.decisions) if key is not None else ""
            if tail:
                extra.append(_tail_event(_DONE_OF[kind], obj, tail))
            field = "text" if kind == "response.output_text.done" else "arguments"
            changed = self._redact_whole([(obj, field)] if isinstance(obj.get(field), str) else [])
        elif kind == "response.content_part.done":
            part = obj.get("part")
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                changed = self._redact_whole([(part, "text")])
        elif kind in ("response.output_item.done", "response.output_item.added"):
            changed = self._redact_output([obj.get("item")])
        elif kind in _ENDS:
            response = obj.get("response")
            if isinstance(response, dict):
                self.usage = usage_of(response.get("usage")) or self.usage
                if isinstance(response.get("id"), str):
                    self.response_id = response["id"]
                extra.extend(self._open_tails(obj))
                changed = self._redact_output(response.get("output"))
            self.done = True
            self.final = obj
        elif kind == "response.created":
            response = obj.get("response")
            if isinstance(response, dict) and isinstance(response.get("id"), str):
                self.response_id = response["id"]
        out: list[bytes] = []
        for event in extra:
            event["sequence_number"] = self._next_inserted(obj)
            out.append(encode(event))
        seq = obj.get("sequence_number")
        if isinstance(seq, int):
            if self._shift:
                obj["sequence_number"] = seq + self._shift
                changed = True
            self.last_sequence = obj["sequence_number"]
        out.append(raw if raw is not None and not changed else encode(obj))
        return out

    def _next_inserted(self, before: dict[str, Any]) -> int:
        """The sequence number of an event inserted before `before`: `before`'s own, shifting
        it and every later one by one."""
        seq = before.get("sequence_number")
        number = (seq if isinstance(seq, int) else self.last_sequence) + self._shift
        self._shift += 1
        return number

    def _open_tails(self, end: dict[str, Any]) -> list[dict[str, Any]]:
        """Tails of items that never sent their `.done` (an upstream that skipped it)."""
        out: list[dict[str, Any]] = []
        for key in self.policies.open_parts():
            tail = self.policies.flush(key, self.decisions)
            if tail:
                index = key[0] if isinstance(key, tuple) else key
                kind = ARGS_DELTA if isinstance(key, tuple) else TEXT_DELTA
                out.append(_tail_event(kind, {"output_index": index, "content_index": 0}, tail))
        return out

    def _redact_whole(self, slots: list[tuple[Any, Any]], tool_args: list[ToolArguments] | None = None) -> bool:
        if not slots or not self._redactors:
            return False
        try:
            # The decisions were recorded as the deltas streamed: this pass only keeps the
            # repeated text consistent with them.
            return judge_slots(slots, self._redactors, "output", [])
        except Stop:  # pragma: no cover - redact-only policies do not block
            return False
        finally:
            for args in tool_args or ():
                args.commit()

    def _redact_output(self, output: Any) -> bool:
        tool_args: list[ToolArguments] = []
        slots = output_slots(output, tool_args)
        return self._redact_whole(slots, tool_args)


def _key(event: dict[str, Any]) -> PartKey | None:
    index = event.get("output_index")
    if not isinstance(index, int) or isinstance(index, bool):
        return None
    return (index, 0) if event.get("type", "").startswith("response.function_call_arguments") else index


def _tail_event(kind: str, like: dict[str, Any], tail: str) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind}
    for field in ("item_id", "output_index", "content_index"):
        if field in like and not (kind == ARGS_DELTA and field == "content_index"):
            event[field] = like[field]
    event["delta"] = tail
    return event


class ChatToResponses:
    """Chat completion chunks in, Responses API events out (sans-IO, one per stream)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.response_id = response_id_of(None)
        self._seq = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # items as they complete
        self._text: list[str] | None = None  # the open message item's text
        self._calls: dict[int, dict[str, Any]] = {}  # tool call index -> its item, while open
        self._args: dict[int, list[str]] = {}
        self._finish: str | None = None
        self.usage: TokenUsage | None = None

    def _ev(self, kind: str, **data: Any) -> dict[str, Any]:
        self._seq += 1
        return {"type": kind, "sequence_number": self._seq, **data}

    def _response(self, status: str) -> dict[str, Any]:
        obj = response_object(self.response_id, self.model, list(self._output), self.usage, self._finish)
        if status != "completed":
            obj.update(status=status, output=[], usage=None)
        return obj

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            self.response_id = response_id_of(chunk.get("id"))
            self.model = chunk.get("model") or self.model
            out.append(self._ev("response.created", response=self._response("in_progress")))
            out.append(self._ev("response.in_progress", response=self._response("in_progress")))
        if isinstance(chunk.get("usage"), dict):
            u = chunk["usage"]
            details = u.get("prompt_tokens_details") or {}
            self.usage = usage_of(
                {
                    "input_tokens": u.get("prompt_tokens"),
                    "output_tokens": u.get("completion_tokens"),
                    "total_tokens": u.get("total_tokens"),
                    "input_tokens_details": {"cached_tokens": details.get("cached_tokens", 0)},
                }
            )
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.extend(self._text_delta(delta["content"]))
            for call in delta.get("tool_calls") or ():
                out.extend(self._call_delta(call))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                out.extend(self._close_all())
        return out

    def _msg_id(self) -> str:
        return "msg_" + self.response_id[5:]

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        index = len(self._output)
        where = {"item_id": self._msg_id(), "output_index": index, "content_index": 0}
        if self._text is None:
            self._text = []
            item = {**message_item(self._msg_id(), ""), "status": "in_progress", "content": []}
            out.append(self._ev("response.output_item.added", output_index=index, item=item))
            part = {"type": "output_text", "text": "", "annotations": []}
            out.append(self._ev("response.content_part.added", **where, part=part))
        self._text.append(text)
        out.append(self._ev(TEXT_DELTA, **where, delta=text))
        return out

    def _close_text(self) -> list[dict[str, Any]]:
        if self._text is None:
            return []
        text, self._text = "".join(self._text), None
        index = len(self._output)
        where = {"item_id": self._msg_id(), "output_index": index, "content_index": 0}
        item = message_item(self._msg_id(), text)
        self._output.append(item)
        return [
            self._ev("response.output_text.done", **where, text=text),
            self._ev("response.content_part.done", **where, part=item["content"][0]),
            self._ev("response.output_item.done", output_index=index, item=item),
        ]

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._close_text()
        i = call.get("index", 0)
        fn = call.get("function") or {}
        item = self._calls.get(i)
        if item is None:
            index = len(self._output) + len(self._calls)
            item_id = f"fc_{self.response_id[5:]}_{i}"
            item = self._calls[i] = {**call_item(item_id, call.get("id") or "", fn.get("name"), ""), "index": index}
            self._args[i] = []
            added = {k: v for k, v in item.items() if k != "index"}
            out.append(
                self._ev("response.output_item.added", output_index=index, item={**added, "status": "in_progress"})
            )
        if fn.get("arguments"):
            self._args[i].append(fn["arguments"])
            out.append(self._ev(ARGS_DELTA, item_id=item["id"], output_index=item["index"], delta=fn["arguments"]))
        return out

    def _close_all(self) -> list[dict[str, Any]]:
        out = self._close_text()
        for i, item in sorted(self._calls.items(), key=lambda kv: kv[1]["index"]):
            args = "".join(self._args.pop(i, []))
            done = {k: v for k, v in item.items() if k != "index"}
            done["arguments"] = args
            self._output.append(done)
            out.append(
                self._ev(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=item["index"],
                    arguments=args,
                )
            )
            out.append(self._ev("response.output_item.done", output_index=item["index"], item=done))
        self._calls.clear()
        return out

    def end(self) -> list[dict[str, Any]]:
        """After the last chunk: any item still open, then `response.completed`."""
        out = self._close_all()
        out.append(self._ev("response.completed", response=self._response("completed")))
        return out
