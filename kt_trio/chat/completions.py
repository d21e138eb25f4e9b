"""`POST /v1/chat/completions` (issue 8): the request judged by the input policies, sent to the
target of its `model` (translated for Anthropic), and the answer judged by the output policies,
whole or chunk by chunk as the upstream's chunks arrive (nothing is buffered beyond the PII tail
the split-safe redactor must hold).

A stream a policy blocks mid-way ends with one error chunk whose choice has
`finish_reason: "content_filter"` and whose `error` names the policy, then `[DONE]` (DESIGN.md).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import httpx

from kt_trio.chat import anthropic, openai, sse
from kt_trio.chat.asgi_io import SSE_HEADERS, respond
from kt_trio.chat.door import answered, judged_async
from kt_trio.chat.exchange import Exchange
from kt_trio.chat.policy import ChatPolicies, Stop
from kt_trio.chat.stream import ChunkFilter, error_chunk
from kt_trio.chat.upstream import http_candidates, read_json, upstream_response
from kt_trio.config.schema import Target
from kt_trio.guardrail.edge import chat_completion_slots, chat_request_slots
from kt_trio.guardrail.http_doors import StreamText, context, guard_stream_end, guard_texts
from kt_trio.keys import KeyInfo
from kt_trio.protocol.errors import dumps
from kt_trio.providers.errors import policy_refusal, refusal
from kt_trio.records import PolicyDecision

if TYPE_CHECKING:
    from kt_trio.chat.app import ChatApp, Receive, Scope, Send

ROUTE = "/v1/chat/completions"


async def chat_completions(app: ChatApp, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
    request, size = await app.read_request(receive)
    if not isinstance(request.get("messages"), list):
        raise refusal(400, "invalid_request_error", "invalid_request", "The body must be an object with 'messages'.")
    primary = app.target_for(request, key, scope)
    admitted = await app.admit(key)
    ex = app.exchange("chat_", ROUTE, primary, scope, key, admitted=admitted)
    async with ex.until_finished():
        ex.start(size)
        await _judged_chat(app, ex, request, receive, ex.wrap(send))


async def _judged_chat(app: ChatApp, ex: Exchange, request: dict[str, Any], receive: Receive, send: Send) -> None:
    policies = ChatPolicies(app.chain)

    async def judge(decisions: list[PolicyDecision]) -> None:
        # The chain, then the external guardrail (async) on what the chain left.
        policies.judge_request(request, decisions)
        await _guard(app, ex, request, chat_request_slots(request), "input", decisions)

    if await judged_async(ex, request, judge, send):
        await answered(ex, receive, send, lambda: _complete(app, ex, request, policies, send))


async def _guard(
    app: ChatApp,
    ex: Exchange,
    request: dict[str, Any],
    slots: list[Any],
    direction: Literal["input", "output"],
    decisions: list[PolicyDecision],
) -> bool:
    """The external guardrail on whole texts (the request's messages, a non-streamed answer's
    choices; a streamed answer's at its end, `_relay_stream`): True when it redacted some;
    raises `Stop` on a block."""
    ctx = context(ROUTE, request.get("model"), ex.id, ex.key)
    return await guard_texts(app.guardrail, ctx, slots, direction, decisions, "chat.completion")


def _build(request: dict[str, Any], app: ChatApp) -> Any:
    stream = bool(request.get("stream"))
    wants_usage: dict[str, bool] = {}

    def build(target: Target) -> tuple[str, bytes, dict[str, str]]:
        secret = app.secrets.get(target.id)
        if target.provider == "anthropic":
            opts = request.get("stream_options")
            wants_usage[target.id] = isinstance(opts, dict) and bool(opts.get("include_usage"))
            return (
                anthropic.messages_url(target),
                dumps(anthropic.to_messages_request(request, target)),
                anthropic.headers(secret, stream=stream),
            )
        body = dict(request)
        wants_usage[target.id] = openai.prepare(body, target)
        return openai.chat_url(target), dumps(body), openai.headers(target, secret, stream=stream)

    return build, wants_usage


async def _complete(app: ChatApp, ex: Exchange, request: dict[str, Any], policies: ChatPolicies, send: Send) -> None:
    build, wants_usage = _build(request, app)
    candidates = http_candidates(app.config, ex.target)
    async with upstream_response(app.client, app.config, app.health, candidates, build) as (target, resp):
        ex.target = target
        if request.get("stream"):
            await _relay_stream(ex, target, resp, policies, send, wants_usage[target.id], app, request)
        else:
            await _relay_whole(ex, target, resp, policies, send, app)


async def _relay_whole(
    ex: Exchange, target: Target, resp: httpx.Response, policies: ChatPolicies, send: Send, app: ChatApp
) -> None:
    raw, obj = await read_json(resp)
    if target.provider == "anthropic":
        usage = anthropic.usage_of(obj.get("usage") if isinstance(obj, dict) else None)
        obj = anthropic.to_completion(obj, target.model or "")
        changed = True
    else:
        usage = openai.usage_of(obj.get("usage") if isinstance(obj, dict) else None)
        changed = False
    decisions: list[PolicyDecision] = []
    try:
        if isinstance(obj, dict) and policies.judge_response(obj, decisions):
            changed = True
        if isinstance(obj, dict) and await _guard(app, ex, obj, chat_completion_slots(obj), "output", decisions):
            changed = True
    except Stop as stop:
        raise policy_refusal(stop.policy, stop.reason) from None
    finally:
        ex.decisions(decisions)
        ex.usage(target, usage, obj.get("id") if isinstance(obj, dict) else None)
    await respond(send, 200, dumps(obj) if changed else raw)


async def _relay_stream(
    ex: Exchange,
    target: Target,
    resp: httpx.Response,
    policies: ChatPolicies,
    send: Send,
    client_wants_usage: bool,
    app: ChatApp,
    request: dict[str, Any],
) -> None:
    filt = ChunkFilter(
        policies,
        client_wants_usage=client_wants_usage,
        usage_of=openai.usage_of,  # the translated stream's usage chunk is in OpenAI's shape
    )
    # The external guardrail judges each choice's completed text: the stream's end (from the
    # first finish_reason on) is held until it has (`guardrail.http_doors`).
    guard = app.guardrail if app.guardrail is not None and app.guardrail.applies("output") else None
    seen = filt.seen = StreamText() if guard is not None else None
    held: list[bytes] = []
    translator = (
        anthropic.StreamTranslator(target.model or "", include_usage=True) if target.provider == "anthropic" else None
    )
    parser = sse.SseParser()
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    try:
        async for chunk in resp.aiter_bytes():
            out: list[bytes] = []
            for ev in parser.feed(chunk):
                if translator is None:
                    out.extend(filt.on_event(ev))
                    continue
                if ev.data is None:
                    continue
                try:
                    event = json.loads(ev.data)
                except ValueError:
                    continue
                for obj in translator.feed(event):
                    out.extend(filt.on_chunk(obj, None))
            ex.decisions(filt.decisions)
            if filt.done:
                break
            if out and guard is not None and filt.finishing:
                held.extend(out)  # the bytes that finish the answer wait for the guardrail
            elif out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
        else:
            out = [*filt.flush(), sse.DONE]
        policies.after_stream(filt.decisions)
        if guard is not None and seen is not None:
            ctx = context(ROUTE, request.get("model"), ex.id, ex.key)
            await guard_stream_end(
                guard, ctx, seen.slots(), seen.over, filt.decisions, "chat.completion", redact_is_flag=True
            )
        end = b"".join([*held, *out])
    except Stop as stop:
        ex.ended_by("gateway", f"policy_violation: {stop.policy}")
        end = filt.error_chunk("policy_violation", stop.policy, stop.reason, content_filter=True) + sse.DONE
    except anthropic.StreamError as err:
        ex.ended_by("upstream", "upstream_error")
        end = error_chunk(err.err_type, err.code, str(err)) + sse.DONE
    except (httpx.HTTPError, sse.SseProtocolError) as exc:
        message = f"The upstream stream broke ({type(exc).__name__})."
        ex.ended_by("upstream", "stream_interrupted")
        end = error_chunk("upstream_error", "stream_interrupted", message) + sse.DONE
    finally:
        ex.decisions(filt.decisions)
        if filt.usage is not None:  # reported before the bytes that end the client's stream
            ex.usage(target, filt.usage, filt.response_id)
    await send({"type": "http.response.body", "body": end, "more_body": False})
