"""Chat completions over Anthropic's Messages API, both ways (pure: dicts in, dicts out).

Request: system/developer messages become `system`; tool results (`role: tool`) become
`tool_result` blocks of a user turn; assistant `tool_calls` become `tool_use` blocks; images
(`image_url`, data: URLs or http ones) become `image` blocks; `max_tokens` gets a default;
`stop` becomes `stop_sequences`. Response and stream events come back as OpenAI chat
completion objects and chunks, with `finish_reason` mapped and usage counted.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kt_trio.config.routing import upstream_model
from kt_trio.config.schema import Target
from kt_trio.providers.auth import auth_header
from kt_trio.providers.errors import anthropic_error
from kt_trio.providers.urls import messages_url
from kt_trio.providers.usage import count, text_usage
from kt_trio.records import TokenUsage

__all__ = ["StreamError", "StreamTranslator", "headers", "messages_url", "to_completion", "to_messages_request"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def headers(secret: str | None, *, stream: bool) -> dict[str, str]:
    out = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "accept-encoding": "identity",
        "anthropic-version": ANTHROPIC_VERSION,
    }
    auth = auth_header("anthropic", secret)
    if auth is not None:
        out[auth[0]] = auth[1]
    return out


# ---------------------------------------------------------------------------------- request


def to_messages_request(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """An OpenAI chat completions request as a Messages API request."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:  # Anthropic wants turns to alternate
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for msg in body.get("messages") or ():
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            system.extend(b["text"] for b in _blocks(content) if b.get("type") == "text")
        elif role == "tool":
            text = "".join(b.get("text", "") for b in _blocks(content) if b.get("type") == "text")
            add("user", [{"type": "tool_result", "tool_use_id": msg.get("tool_call_id") or "", "content": text}])
        elif role == "assistant":
            blocks = [b for b in _blocks(content) if b.get("type") == "text" and b.get("text")]
            for call in msg.get("tool_calls") or ():
                fn = call.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = {}
                blocks.append({"type": "tool_use", "id": call.get("id") or "", "name": fn.get("name"), "input": args})
            add("assistant", blocks)
        else:
            add("user", _blocks(content))
    out: dict[str, Any] = {
        "model": upstream_model(body.get("model"), target),
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        out["stream"] = True
    tools = [_tool(t) for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    user = body.get("user")
    if isinstance(user, str):
        out["metadata"] = {"user_id": user}
    return out


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            out.append({"type": "text", "text": part.get("text") or ""})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url") or ""
            if url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                out.append({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
            else:
                out.append({"type": "image", "source": {"type": "url", "url": url}})
    return out


def _tool(t: dict[str, Any]) -> dict[str, Any]:
    fn = t.get("function") or {}
    tool = {"name": fn.get("name"), "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
    if fn.get("description"):
        tool["description"] = fn["description"]
    return tool


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        out = {"type": "auto"} if parallel is False else None
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


# ---------------------------------------------------------------------------------- response


def usage_of(usage: Any) -> TokenUsage | None:
    if not isinstance(usage, dict):
        return None
    cached = count(usage.get("cache_read_input_tokens"))
    inp = count(usage.get("input_tokens")) + cached + count(usage.get("cache_creation_input_tokens"))
    return text_usage(inp, count(usage.get("output_tokens")), cached_tokens=cached)


def openai_usage(u: TokenUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def to_completion(msg: dict[str, Any], model: str) -> dict[str, Any]:
    """A Messages API response as an OpenAI chat completion."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or ():
        if block.get("type") == "text":
            text.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input") or {})},
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    usage = usage_of(msg.get("usage")) or TokenUsage()
    return {
        "id": _chat_id(msg.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": msg.get("model") or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(msg.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": openai_usage(usage),
    }


class StreamTranslator:
    """Anthropic stream events in, OpenAI chat completion chunks out (sans-IO, one per stream)."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = _chat_id(None)
        self.created = int(time.time())
        self.usage = TokenUsage()
        self._raw_usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # content block index -> tool_calls index
        self.finished = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one event becomes. An `error` event raises `StreamError`."""
        t = event.get("type")
        if t == "content_block_delta":
            delta = event.get("delta") or {}
            dt = delta.get("type")
            if dt == "text_delta":
                return [self._chunk({"content": delta.get("text") or ""})]
            if dt == "input_json_delta":
                i = self._tool_index.get(event.get("index", -1))
                if i is None:
                    return []
                return [
                    self._chunk({"tool_calls": [{"index": i, "function": {"arguments": delta.get("partial_json")}}]})
                ]
            return []  # thinking, signatures, citations: not in the chat completions shape
        if t == "message_start":
            msg = event.get("message") or {}
            self.id = _chat_id(msg.get("id"))
            self.model = msg.get("model") or self.model
            self._raw_usage.update(msg.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if t == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                i = self._tool_index[event.get("index", -1)] = len(self._tool_index)
                call = {"index": i, "id": block.get("id"), "type": "function"}
                call["function"] = {"name": block.get("name"), "arguments": ""}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if t == "message_delta":
            self._raw_usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, FINISH_REASONS.get(reason or "", "stop"))]
        if t == "message_stop":
            self.finished = True
            self.usage = usage_of(self._raw_usage) or TokenUsage()
            if not self.include_usage:
                return []
            chunk = self._chunk({})
            chunk["choices"] = []
            chunk["usage"] = openai_usage(self.usage)
            return [chunk]
        if t == "error":
            status, _, err_type, code, message = anthropic_error(200, event)
            raise StreamError(status, err_type, code, message)
        return []  # ping, content_block_stop, unknown events


class StreamError(Exception):
    """An `error` event mid-stream, translated (`kt_trio.providers.errors.anthropic_error`)."""

    def __init__(self, status: int, err_type: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.err_type = err_type
        self.code = code


def _chat_id(msg_id: Any) -> str:
    if isinstance(msg_id, str) and msg_id:
        return "chatcmpl-" + msg_id.removeprefix("msg_")
    return "chatcmpl-" + format(time.time_ns(), "x")
