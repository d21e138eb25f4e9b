"""Scriptable OpenAI-style and Anthropic-style HTTP chat upstreams, served by hypercorn on trio.

One ASGI app answers by path:

* ``POST .../chat/completions`` (OpenAI; also Azure's
  ``/openai/deployments/{deployment}/chat/completions?api-version=...``): a chat completion,
  or with ``stream: true`` SSE chunks (a role chunk, one chunk per entry of
  `HttpMockBehaviour.chunks`, the tool call's arguments in two pieces when `tool_call` is set
  (cut at `tool_call_split`), the finish chunk, a usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``).
* ``POST .../v1/messages`` (Anthropic Messages API): a message, or with ``stream: true`` the
  event sequence ``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``...,
  ``content_block_stop``, (a ``tool_use`` block with two ``input_json_delta`` pieces when
  `tool_call` is set, cut at `tool_call_split`), ``message_delta`` with the stop reason and
  usage, ``message_stop``.
* ``POST .../responses`` (OpenAI Responses; also Azure's ``/openai/responses``): a response
  object, or with ``stream: true`` its events (``response.created``, the message's
  ``response.output_text.delta`` per entry of `chunks`, the done events, a ``function_call``
  item with two ``response.function_call_arguments.delta`` pieces when `tool_call` is set, then
  ``response.completed`` with usage).
* ``GET .../models``: a list.
* For the gateway's `/v1/*` passthrough: ``POST .../embeddings`` (float embeddings, one per
  input), ``GET .../files/{id}`` (a file object) and ``GET .../files/{id}/content``
  (`file_size` bytes of a known pattern, `file_content(n)`, in 64 KiB chunks; with
  `hold_after_first_chunk` set, the rest waits for that event, so a test can prove the first
  chunk reached the client before the upstream finished). Any other POST to ``.../files``
  (an upload) answers with the size of the body it received. `body_started` is set when the
  first request body bytes arrive (a test can hold back the rest of an upload until then).

Faults: `status` answers every request with that status and `error_body` (in the provider's
shape unless given); `fail_first` answers only the first N requests that way; `chunk_delay`
spaces chunks out; `stream_error_after` sends an Anthropic ``error`` event after that many
text chunks. Every request is recorded (`requests`) with its headers, so a test can check the
upstream never saw the client's key.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import trio
from attrs import define, field, frozen
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@frozen
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


@define
class HttpMockBehaviour:
    chunks: list[str] = field(factory=lambda: ["Hello", ", ", "world", "!"])
    chunk_delay: float = 0.0
    prompt_tokens: int = 11
    completion_tokens: int = 7
    status: int | None = None
    error_body: dict[str, Any] | None = None
    fail_first: int = 0
    tool_call: tuple[str, str] | None = None  # (name, JSON arguments) the model "calls"
    # Where streamed tool call arguments are cut in two (both providers); None: in the middle.
    tool_call_split: int | None = None
    stream_error_after: int | None = None
    file_size: int = 1024
    hold_after_first_chunk: trio.Event | None = None


class MockHttpUpstream:
    def __init__(self, behaviour: HttpMockBehaviour | None = None) -> None:
        self.behaviour = behaviour or HttpMockBehaviour()
        self.requests: list[RecordedRequest] = []
        self.body_started = trio.Event()
        self.url = ""  # set once serving: http://127.0.0.1:PORT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            msg = await receive()
            chunk = msg.get("body", b"")
            if chunk:
                self.body_started.set()
            raw += chunk
            if not msg.get("more_body"):
                break
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append(
            RecordedRequest(scope["method"], path, scope["query_string"].decode("latin-1"), headers, body, raw)
        )
        anthropic_style = path.endswith("/messages")
        b = self.behaviour
        if b.status is not None and (b.fail_first == 0 or len(self.requests) <= b.fail_first):
            await _json(send, b.status, b.error_body or _error_body(b.status, anthropic_style))
            return
        if path.endswith("/models"):
            await _json(send, 200, {"object": "list", "data": [{"id": "mock-model", "object": "model"}]})
            return
        if "/files" in path:
            await self._files(scope["method"], path, raw, send)
            return
        if path.endswith("/embeddings") and isinstance(body, dict):
            given = body.get("input")
            inputs: list[Any] = given if isinstance(given, list) else [given]
            data = [{"object": "embedding", "index": i, "embedding": [0.5, -0.25, 0.125]} for i in range(len(inputs))]
            usage = {"prompt_tokens": b.prompt_tokens, "total_tokens": b.prompt_tokens}
            await _json(send, 200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage})
            return
        if not isinstance(body, dict):
            await _json(send, 400, _error_body(400, anthropic_style))
            return
        model = body.get("model") or "mock-deployment"
        if anthropic_style:
            if body.get("stream"):
                await _sse(send, self._anthropic_events(model))
            else:
                await _json(send, 200, self._anthropic_message(model))
        elif path.endswith("/responses"):
            if body.get("stream"):
                await _sse(send, self._responses_events(model))
            else:
                await _json(send, 200, self._response_object(model))
        elif path.endswith("/chat/completions"):
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                await _sse(send, self._openai_chunks(model, include_usage))
            else:
                await _json(send, 200, self._openai_completion(model))
        else:
            await _json(send, 404, _error_body(404, anthropic_style))

    # -- passthrough ----------------------------------------------------------------------------

    async def _files(self, method: str, path: str, raw: bytes, send: Send) -> None:
        if method == "POST":
            await _json(send, 200, {"id": "file-up", "object": "file", "bytes": len(raw), "status": "uploaded"})
            return
        file_id = path.split("/files/", 1)[-1].removesuffix("/content")
        if not path.endswith("/content"):
            info = {"id": file_id, "object": "file", "bytes": self.behaviour.file_size, "created_at": 0}
            await _json(send, 200, {**info, "filename": "data.jsonl", "purpose": "batch", "status": "processed"})
            return
        size = self.behaviour.file_size
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        content = file_content(size)
        step = 64 * 1024
        for start in range(0, size, step):
            await send({"type": "http.response.body", "body": content[start : start + step], "more_body": True})
            if start == 0 and self.behaviour.hold_after_first_chunk is not None:
                await self.behaviour.hold_after_first_chunk.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- OpenAI ---------------------------------------------------------------------------------

    def _usage(self) -> dict[str, int]:
        b = self.behaviour
        return {
            "prompt_tokens": b.prompt_tokens,
            "completion_tokens": b.completion_tokens,
            "total_tokens": b.prompt_tokens + b.completion_tokens,
        }

    def _openai_completion(self, model: str) -> dict[str, Any]:
        b = self.behaviour
        message: dict[str, Any] = {"role": "assistant", "content": "".join(b.chunks)}
        finish = "stop"
        if b.tool_call:
            message = {"role": "assistant", "content": None, "tool_calls": [_oa_call(b.tool_call)]}
            finish = "tool_calls"
        return {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": self._usage(),
        }

    async def _openai_chunks(self, model: str, include_usage: bool) -> AsyncIterator[bytes]:
        b = self.behaviour
        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        extra = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            c = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}
            return b"data: " + json.dumps(c).encode() + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        for text in b.chunks:
            if b.chunk_delay:
                await trio.sleep(b.chunk_delay)
            yield chunk({"content": text})
        if b.tool_call:
            call = _oa_call(b.tool_call)
            yield chunk({"tool_calls": [{"index": 0, **call, "function": {**call["function"], "arguments": ""}}]})
            for piece in _halves(b.tool_call[1], b.tool_call_split):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if b.tool_call else "stop")
        if include_usage:
            yield b"data: " + json.dumps({**base, "choices": [], "usage": self._usage()}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    # -- OpenAI Responses -----------------------------------------------------------------------

    def _response_output(self) -> list[dict[str, Any]]:
        b = self.behaviour
        text = {"type": "output_text", "text": "".join(b.chunks), "annotations": []}
        out: list[dict[str, Any]] = [
            {"id": "msg_mock", "type": "message", "status": "completed", "role": "assistant", "content": [text]}
        ]
        if b.tool_call:
            name, args = b.tool_call
            call = {"id": "fc_mock", "type": "function_call", "status": "completed", "call_id": "call_mock1"}
            out.append({**call, "name": name, "arguments": args})
        return out

    def _response_object(self, model: str, status: str = "completed") -> dict[str, Any]:
        b = self.behaviour
        usage = {
            "input_tokens": b.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": b.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": b.prompt_tokens + b.completion_tokens,
        }
        done = status == "completed"
        return {
            "id": "resp_mock",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": model,
            "output": self._response_output() if done else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage if done else None,
        }

    async def _responses_events(self, model: str) -> AsyncIterator[bytes]:
        """The Responses API's stream: created, the message's text deltas, a function call's
        argument deltas in two pieces when `tool_call` is set, then `response.completed`."""
        b = self.behaviour
        seq = 0

        def ev(name: str, data: dict[str, Any]) -> bytes:
            nonlocal seq
            seq += 1
            return f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': seq, **data})}\n\n".encode()

        yield ev("response.created", {"response": self._response_object(model, "in_progress")})
        output = self._response_output()
        msg = {**output[0], "status": "in_progress", "content": []}
        yield ev("response.output_item.added", {"output_index": 0, "item": msg})
        where = {"item_id": "msg_mock", "output_index": 0, "content_index": 0}
        yield ev(
            "response.content_part.added", {**where, "part": {"type": "output_text", "text": "", "annotations": []}}
        )
        for text in b.chunks:
            if b.chunk_delay:
                await trio.sleep(b.chunk_delay)
            yield ev("response.output_text.delta", {**where, "delta": text, "logprobs": []})
        full = "".join(b.chunks)
        yield ev("response.output_text.done", {**where, "text": full, "logprobs": []})
        yield ev("response.content_part.done", {**where, "part": output[0]["content"][0]})
        yield ev("response.output_item.done", {"output_index": 0, "item": output[0]})
        if b.tool_call:
            call = output[1]
            yield ev("response.output_item.added", {"output_index": 1, "item": {**call, "arguments": ""}})
            for piece in _halves(call["arguments"], b.tool_call_split):
                yield ev(
                    "response.function_call_arguments.delta", {"item_id": "fc_mock", "output_index": 1, "delta": piece}
                )
            args = {"item_id": "fc_mock", "output_index": 1, "arguments": call["arguments"]}
            yield ev("response.function_call_arguments.done", args)
            yield ev("response.output_item.done", {"output_index": 1, "item": call})
        yield ev("response.completed", {"response": self._response_object(model)})

    # -- Anthropic ------------------------------------------------------------------------------

    def _anthropic_message(self, model: str) -> dict[str, Any]:
        b = self.behaviour
        content: list[dict[str, Any]] = [{"type": "text", "text": "".join(b.chunks)}] if b.chunks else []
        if b.tool_call:
            content.append(
                {"type": "tool_use", "id": "toolu_mock1", "name": b.tool_call[0], "input": json.loads(b.tool_call[1])}
            )
        return {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if b.tool_call else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": b.prompt_tokens, "output_tokens": b.completion_tokens},
        }

    async def _anthropic_events(self, model: str) -> AsyncIterator[bytes]:
        b = self.behaviour

        def ev(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        msg: dict[str, Any] = {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": b.prompt_tokens, "output_tokens": 1},
        }
        yield ev("message_start", {"message": msg})
        yield ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        yield ev("ping", {})
        for i, text in enumerate(b.chunks):
            if b.stream_error_after is not None and i == b.stream_error_after:
                yield ev("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                return
            if b.chunk_delay:
                await trio.sleep(b.chunk_delay)
            yield ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
        yield ev("content_block_stop", {"index": 0})
        if b.tool_call:
            name, args = b.tool_call
            block = {"type": "tool_use", "id": "toolu_mock1", "name": name, "input": {}}
            yield ev("content_block_start", {"index": 1, "content_block": block})
            for piece in _halves(args, b.tool_call_split):
                yield ev(
                    "content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}}
                )
            yield ev("content_block_stop", {"index": 1})
        stop = "tool_use" if b.tool_call else "end_turn"
        yield ev(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": b.completion_tokens}},
        )
        yield ev("message_stop", {})


def file_content(size: int) -> bytes:
    """`size` bytes that differ from chunk to chunk, so a lost or repeated chunk shows."""
    block = bytes(range(256)) * 256  # 64 KiB
    out = bytearray()
    n = 0
    while len(out) < size:
        out += n.to_bytes(4, "big") + block[4:]
        n += 1
    return bytes(out[:size])


def _halves(text: str, at: int | None) -> tuple[str, str]:
    cut = len(text) // 2 if at is None else at
    return text[:cut], text[cut:]


def _oa_call(tool_call: tuple[str, str]) -> dict[str, Any]:
    return {"id": "call_mock1", "type": "function", "function": {"name": tool_call[0], "arguments": tool_call[1]}}


def _error_body(status: int, anthropic_style: bool) -> dict[str, Any]:
    if anthropic_style:
        kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": f"mock error {status}"}}
    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(status, "server_error")
    return {"error": {"type": kind, "code": kind, "message": f"mock error {status}", "param": None}}


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if status == 429:
        headers.append((b"retry-after", b"2"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _sse(send: Send, events: AsyncIterator[bytes]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    async for data in events:
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@asynccontextmanager
async def serve_asgi(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `app` with hypercorn's trio worker on `host`, a free port; yields `http://host:port`."""
    config = HypercornConfig()
    config.bind = [f"{host}:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: serve(
                app,  # type: ignore[arg-type]  # a plain ASGI callable; hypercorn's types are narrower
                config,
                shutdown_trigger=stop.wait,
                task_status=task_status,
            )
        )
        try:
            yield binds[0]
        finally:
            stop.set()


@asynccontextmanager
async def open_mock_http_upstream(behaviour: HttpMockBehaviour | None = None) -> AsyncIterator[MockHttpUpstream]:
    mock = MockHttpUpstream(behaviour)
    async with serve_asgi(mock) as url:
        mock.url = url
        yield mock
