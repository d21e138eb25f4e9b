"""Streamed chat completion chunks through the policies, one chunk at a time (sans-IO).

Each upstream chunk goes out as soon as it arrived: a chunk no policy changed leaves as the
very SSE bytes it came in as; a delta whose tail could still be the start of PII (a phone number
split across two chunks) is sent without that tail, which follows with the next chunk or, when
the choice finishes, inside its `finish_reason` chunk. Tool call arguments
(`delta.tool_calls[].function.arguments`) go through the same redactor, one stream per tool call
of each choice. A block raises `policy.Stop`; the caller ends the stream with `error_chunk` (its choice
finished with `content_filter`) and `[DONE]`.

Usage: the gateway asks for `stream_options.include_usage` itself; when the client did not, the
final usage chunk (empty `choices`) is read and not forwarded.
"""

from __future__ import annotations

import json
from typing import Any

from kt_trio.chat import sse
from kt_trio.chat.policy import ChatPolicies, PartKey
from kt_trio.protocol.errors import dumps
from kt_trio.providers.errors import error_object
from kt_trio.records import PolicyDecision, TokenUsage


def error_chunk(err_type: str, code: str, message: str, head: dict[str, Any] | None = None) -> bytes:
    """The chunk that ends a stream the gateway cut: the error body's `error`; with `head` (the
    stream's id/object/created/model) also a choice with `finish_reason: "content_filter"`, so a
    client reading finish reasons sees why its text stopped (DESIGN.md, for policy blocks)."""
    chunk: dict[str, Any] = {}
    if head is not None:
        chunk = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]}
    chunk.update(error_object(err_type, code, message))
    return sse.encode(dumps(chunk))


class ChunkFilter:
    def __init__(self, policies: ChatPolicies, *, client_wants_usage: bool, usage_of: Any) -> None:
        self.policies = policies
        self.client_wants_usage = client_wants_usage
        self._usage_of = usage_of
        self.usage: TokenUsage | None = None
        self.response_id: str | None = None
        self.decisions: list[PolicyDecision] = []
        self.done = False
        self._template: dict[str, Any] | None = None  # id/model/created of the stream, for tail chunks
        # Set by the caller when the external guardrail judges the answer at its end: the content
        # each choice's client received (`guardrail.http_doors.StreamText`).
        self.seen: Any = None
        self.finishing = False  # a choice has finished: the stream's end has begun

    def on_event(self, ev: sse.SseEvent) -> list[bytes]:
        """One upstream SSE event of an OpenAI-style stream: what to send the client."""
        data = ev.data
        if data is None:
            return [ev.raw]
        if data.strip() == "[DONE]":
            self.done = True
            return [*self.flush(), ev.raw]
        try:
            obj = json.loads(data)
        except ValueError:
            return [ev.raw]  # not ours to refuse: forward as it came
        if not isinstance(obj, dict):
            return [ev.raw]
        return self.on_chunk(obj, ev.raw)

    def on_chunk(self, obj: dict[str, Any], raw: bytes | None) -> list[bytes]:
        """One chunk (parsed); `raw` is its SSE bytes as they arrived, or None when translated."""
        if self._template is None and isinstance(obj.get("id"), str):
            self._template = {k: obj[k] for k in ("id", "object", "created", "model") if k in obj}
            self.response_id = obj["id"]
        choices = obj.get("choices")
        usage = self._usage_of(obj.get("usage"))
        if usage is not None:
            self.usage = usage
            if not choices and not self.client_wants_usage:
                return []
        changed = False
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta")
            if not isinstance(delta, dict) or not isinstance(index, int):
                continue
            content = delta.get("content")
            if isinstance(content, str) and content:
                emit = self.policies.feed(index, content, self.decisions)
                if emit != content:
                    delta["content"] = emit
                    changed = True
            for call in delta.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                args = fn.get("arguments") if isinstance(fn, dict) else None
                if isinstance(fn, dict) and isinstance(args, str) and args and isinstance(call.get("index"), int):
                    emit = self.policies.feed((index, call["index"]), args, self.decisions)
                    if emit != args:
                        fn["arguments"] = emit
                        changed = True
            if choice.get("finish_reason") is not None:
                self.finishing = True
                for key in self.policies.parts_of(index):
                    tail = self.policies.flush(key, self.decisions)
                    if tail:
                        _append(delta, key, tail)
                        changed = True
            if self.seen is not None and isinstance(delta.get("content"), str):
                self.seen.add(index, delta["content"])
        if raw is not None and not changed:
            return [raw]
        return [sse.encode(dumps(obj))]

    def error_chunk(self, err_type: str, code: str, message: str, *, content_filter: bool = False) -> bytes:
        head = {"object": "chat.completion.chunk", **(self._template or {})} if content_filter else None
        return error_chunk(err_type, code, message, head)

    def flush(self) -> list[bytes]:
        """Tails of parts whose choice never sent a `finish_reason` (an interrupted stream)."""
        out: list[bytes] = []
        for key in self.policies.open_parts():
            tail = self.policies.flush(key, self.decisions)
            if tail:
                chunk = {**(self._template or {"object": "chat.completion.chunk"})}
                delta: dict[str, Any] = {}
                _append(delta, key, tail)
                index = key[0] if isinstance(key, tuple) else key
                if self.seen is not None and isinstance(delta.get("content"), str):
                    self.seen.add(index, delta["content"])
                chunk["choices"] = [{"index": index, "delta": delta, "finish_reason": None}]
                out.append(sse.encode(dumps(chunk)))
        return out


def _append(delta: dict[str, Any], key: PartKey, tail: str) -> None:
    """Adds held-back text to a chunk's delta: to its content, or to tool call `key[1]`'s arguments."""
    if not isinstance(key, tuple):
        delta["content"] = (delta.get("content") or "") + tail
        return
    calls = delta.get("tool_calls")
    if not isinstance(calls, list):
        calls = delta["tool_calls"] = []
    for call in calls:
        if isinstance(call, dict) and call.get("index") == key[1] and isinstance(call.get("function"), dict):
            fn = call["function"]
            fn["arguments"] = (fn.get("arguments") or "") + tail
            return
    calls.append({"index": key[1], "function": {"arguments": tail}})
