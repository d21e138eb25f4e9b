"""The Responses API's request and response shapes, as the policies and the Anthropic
translation see them (pure: dicts in, dicts out).

Text the input policies read (DESIGN.md): `instructions`, `input` when it is a string, and of
its items: messages' content (a string or `input_text` / `output_text` parts), the output of
`function_call_output` items (a string or text parts), and the arguments of `function_call`
items (JSON-aware, as chat's tool calls: `kt_trio.chat.policy.ToolArguments`). Text the output
policies read of a whole response: its message items' `output_text` parts and its function
calls' arguments.

Anthropic targets: a Responses request becomes a chat completions request
(`to_chat_request`), which the chat translator turns into a Messages API request; a chat
completion comes back as a response object (`from_completion`). The stream goes the same way
(`kt_trio.chat.responses_stream.ChatToResponses`).
"""

from __future__ import annotations

import time
from typing import Any

from kt_trio.chat.policy import Slot, ToolArguments
from kt_trio.providers.usage import cached_of, count, text_usage
from kt_trio.records import TokenUsage

_TEXT_PARTS = ("input_text", "output_text", "text")


def _text_slots(holder: dict[str, Any], key: str, slots: list[Slot]) -> None:
    value = holder.get(key)
    if isinstance(value, str):
        slots.append((holder, key))
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict) and part.get("type") in _TEXT_PARTS and isinstance(part.get("text"), str):
                slots.append((part, "text"))


def _call_slots(item: dict[str, Any], slots: list[Slot], tool_args: list[ToolArguments]) -> None:
    if isinstance(item.get("arguments"), str) and item["arguments"]:
        args = ToolArguments(item)
        tool_args.append(args)
        slots.extend(args.slots)


def input_slots(request: dict[str, Any], tool_args: list[ToolArguments]) -> list[Slot]:
    """The request's text slots; `function_call` arguments are collected in `tool_args` (call
    `commit()` on each after judging, to write a redaction back)."""
    slots: list[Slot] = []
    if isinstance(request.get("instructions"), str):
        slots.append((request, "instructions"))
    value = request.get("input")
    if isinstance(value, str):
        slots.append((request, "input"))
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in ("function_call_output", "custom_tool_call_output"):
            _text_slots(item, "output", slots)
        elif kind == "function_call":
            _call_slots(item, slots, tool_args)
        elif kind in (None, "message"):
            _text_slots(item, "content", slots)
    return slots


def output_slots(output: Any, tool_args: list[ToolArguments]) -> list[Slot]:
    """The text slots of a response's `output` items (or of one item, as a list of one)."""
    slots: list[Slot] = []
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            _text_slots(item, "content", slots)
        elif item.get("type") == "function_call":
            _call_slots(item, slots, tool_args)
    return slots


def usage_of(usage: Any) -> TokenUsage | None:
    """A response's `usage` (from `response.completed` when streamed) as the gateway counts it."""
    if not isinstance(usage, dict):
        return None
    return text_usage(
        count(usage.get("input_tokens")),
        count(usage.get("output_tokens")),
        count(usage.get("total_tokens")),
        cached_of(usage.get("input_tokens_details")),
    )


def responses_usage(u: TokenUsage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.total_tokens,
    }


# ------------------------------------------------------------------------- to and from chat


def _chat_parts(content: Any) -> Any:
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") in _TEXT_PARTS:
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif part.get("type") == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
    return parts


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or "" for p in _chat_parts(content) if p.get("type") == "text")


def to_chat_request(request: dict[str, Any]) -> dict[str, Any]:
    """A Responses request as a chat completions request (for the Anthropic translator)."""
    messages: list[dict[str, Any]] = []
    if isinstance(request.get("instructions"), str) and request["instructions"]:
        messages.append({"role": "system", "content": request["instructions"]})
    value = request.get("input")
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
    for item in value if isinstance(value, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            call = {"id": item.get("call_id") or "", "type": "function"}
            call["function"] = {"name": item.get("name"), "arguments": item.get("arguments") or "{}"}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id") or "", "content": _text_of(item.get("output"))}
            )
        elif kind in (None, "message"):
            messages.append({"role": item.get("role") or "user", "content": _chat_parts(item.get("content"))})
    chat: dict[str, Any] = {"model": request.get("model"), "messages": messages}
    if request.get("max_output_tokens"):
        chat["max_tokens"] = request["max_output_tokens"]
    for key in ("temperature", "top_p", "stream", "parallel_tool_calls", "user"):
        if request.get(key) is not None:
            chat[key] = request[key]
    tools = [
        {"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters") if k in t}}
        for t in request.get("tools") or ()
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    if tools:
        chat["tools"] = tools
    choice = request.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif isinstance(choice, str):
        chat["tool_choice"] = choice
    return chat


def message_item(item_id: str, text: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}


def call_item(item_id: str, call_id: str, name: Any, arguments: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    response_id: str, model: str, output: list[dict[str, Any]], usage: TokenUsage | None, finish: str | None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": responses_usage(usage) if usage is not None else None,
    }
    if finish == "length":
        obj["status"] = "incomplete"
        obj["incomplete_details"] = {"reason": "max_output_tokens"}
    return obj


def response_id_of(chat_id: Any) -> str:
    return "resp_" + (chat_id.removeprefix("chatcmpl-") if isinstance(chat_id, str) else format(time.time_ns(), "x"))


def from_completion(completion: dict[str, Any], model: str, usage: TokenUsage | None) -> dict[str, Any]:
    """A chat completion (translated from Anthropic) as a response object."""
    choice = (completion.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    rid = response_id_of(completion.get("id"))
    output: list[dict[str, Any]] = []
    if msg.get("content"):
        output.append(message_item("msg_" + rid[5:], msg["content"]))
    for i, call in enumerate(msg.get("tool_calls") or ()):
        fn = call.get("function") or {}
        output.append(call_item(f"fc_{rid[5:]}_{i}", call.get("id") or "", fn.get("name"), fn.get("arguments") or ""))
    return response_object(rid, completion.get("model") or model, output, usage, choice.get("finish_reason"))
