"""`POST /v1/responses` over HTTP, `stream: true` as Server-Sent Events (issue 14), governed
like chat completions.

- Input: the text of `instructions` and `input` (`kt_trio.chat.responses_items.input_slots`)
  through the input policies; a block is 400 `policy_violation` naming the policy, also with
  `stream: true` (nothing has been streamed yet); a redaction goes upstream redacted.
- Target: by `model` among `transport: http` targets, as chat (then its fallbacks).
  openai and azure-openai targets get the request as the client wrote it (`model` set to the
  target's model, or to the Azure deployment); anthropic targets get it translated to the
  Messages API through the chat translator, and their answer comes back as a response object or
  as Responses events.
- Output: a whole response is judged whole (a block is 400); a stream event by event
  (`kt_trio.chat.responses_stream`), split-safe; a block mid-stream ends it with an `error`
  event naming the policy and no `response.completed`.
- Usage (from `response.completed`), the key's limits and budget, the audit records and the
  events are chat's (`Exchange`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from kt_trio.chat import anthropic, openai, sse
from kt_trio.chat.asgi_io import SSE_HEADERS, respond
from kt_trio.chat.door import answered, judged_async
from kt_trio.chat.exchange import Exchange
from kt_trio.chat.policy import ChatPolicies, Stop, ToolArguments, judge_slots
from kt_trio.chat.responses_items import from_completion, input_slots, output_slots, to_chat_request, usage_of
from kt_trio.chat.responses_stream import ChatToResponses, ResponsesFilter, error_event
from kt_trio.chat.upstream import http_candidates, read_json, upstream_response
from kt_trio.config.schema import Target
from kt_trio.guardrail.http_doors import (
    context,
    guard_stream_end,
    guard_texts,
    patch_events,
    responses_output_slots,
    responses_request_slots,
)
from kt_trio.keys import KeyInfo
from kt_trio.protocol.errors import dumps
from kt_trio.providers.errors import policy_refusal, refusal
from kt_trio.providers.urls import responses_url
from kt_trio.records import PolicyDecision

if TYPE_CHECKING:
    from kt_trio.chat.app import ChatApp, Receive, Scope, Send

ROUTE = "/v1/responses"
EVENT_TYPE = "response"


def judge_input(policies: ChatPolicies, request: dict[str, Any], decisions: list[PolicyDecision]) -> bool:
    """Input policies over the request's texts; True when a redaction rewrote it."""
    if not policies.input_policies:
        return False
    tool_args: list[ToolArguments] = []
    slots = input_slots(request, tool_args)
    try:
        return bool(slots) and judge_slots(slots, policies.input_policies, "input", decisions)
    finally:
        for args in tool_args:  # even when a later policy blocks, redactions are written back
            args.commit()


async def responses(app: ChatApp, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
    request, size = await app.read_request(receive)
    primary = app.target_for(request, key, scope)
    admitted = await app.admit(key)
    ex = app.exchange("resp_", ROUTE, primary, scope, key, admitted=admitted, event_type=EVENT_TYPE)
    async with ex.until_finished():
        ex.start(size)
        send = ex.wrap(send)
        policies = ChatPolicies(app.chain)

        async def judge(decisions: list[PolicyDecision]) -> None:
            # The chain, then the external guardrail (async) on what the chain left.
            judge_input(policies, request, decisions)
            ctx = context(ROUTE, request.get("model"), ex.id, key)
            await guard_texts(app.guardrail, ctx, responses_request_slots(request), "input", decisions, EVENT_TYPE)

        if await judged_async(ex, request, judge, send):
            await answered(ex, receive, send, lambda: _respond(app, ex, request, policies, send))


def _builder(app: ChatApp, request: dict[str, Any]) -> Any:
    stream = bool(request.get("stream"))

    def build(target: Target) -> tuple[str, bytes, dict[str, str]]:
        secret = app.secrets.get(target.id)
        if target.provider == "anthropic":
            chat = to_chat_request(request)
            return (
                anthropic.messages_url(target),
                dumps(anthropic.to_messages_request(chat, target)),
                anthropic.headers(secret, stream=stream),
            )
        body = dict(request)
        if target.provider == "azure-openai":
            body["model"] = target.deployment or target.model or body.get("model")
        elif target.model is not None:
            body["model"] = target.model
        return responses_url(target), dumps(body), openai.headers(target, secret, stream=stream)

    return build


async def _respond(app: ChatApp, ex: Exchange, request: dict[str, Any], policies: ChatPolicies, send: Send) -> None:
    candidates = http_candidates(app.config, ex.target)
    async with upstream_response(app.client, app.config, app.health, candidates, _builder(app, request)) as (
        target,
        resp,
    ):
        ex.target = target
        model = str(request.get("model") or target.model)
        if request.get("stream"):
            await _relay_stream(ex, target, resp, policies, send, model, app)
        else:
            await _relay_whole(ex, target, resp, policies, send, app, model)


async def _relay_whole(
    ex: Exchange, target: Target, resp: httpx.Response, policies: ChatPolicies, send: Send, app: ChatApp, model: str
) -> None:
    raw, obj = await read_json(resp)
    if not isinstance(obj, dict):
        raise refusal(502, "upstream_error", "invalid_upstream_response", "The upstream's answer is not an object.")
    changed = False
    if target.provider == "anthropic":
        usage = anthropic.usage_of(obj.get("usage"))
        obj = from_completion(anthropic.to_completion(obj, target.model or ""), target.model or "", usage)
        changed = True
    else:
        usage = usage_of(obj.get("usage"))
    decisions: list[PolicyDecision] = []
    tool_args: list[ToolArguments] = []
    try:
        slots = output_slots(obj.get("output"), tool_args)
        if slots and policies.output_policies and judge_slots(slots, policies.output_policies, "output", decisions):
            changed = True
        ctx = context(ROUTE, model, ex.id, ex.key)
        if await guard_texts(
            app.guardrail, ctx, responses_output_slots(obj.get("output")), "output", decisions, EVENT_TYPE
        ):
            changed = True
    except Stop as stop:
        raise policy_refusal(stop.policy, stop.reason) from None
    finally:
        for args in tool_args:
            args.commit()
        ex.decisions(decisions)
        ex.usage(target, usage, obj.get("id"))
    await respond(send, 200, dumps(obj) if changed else raw)


async def _relay_stream(
    ex: Exchange, target: Target, resp: httpx.Response, policies: ChatPolicies, send: Send, model: str, app: ChatApp
) -> None:
    filt = ResponsesFilter(policies)
    # The external guardrail judges the completed response: the events that repeat its text and
    # end it are held until it has (`guardrail.http_doors`).
    guard = app.guardrail if app.guardrail is not None and app.guardrail.applies("output") else None
    held: list[bytes] = []
    chat = (
        anthropic.StreamTranslator(target.model or model, include_usage=True)
        if target.provider == "anthropic"
        else None
    )
    translator = ChatToResponses(target.model or model) if chat is not None else None
    parser = sse.SseParser()
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    end = b""
    try:
        async for data in resp.aiter_bytes():
            out: list[bytes] = []
            for ev in parser.feed(data):
                if chat is None or translator is None:
                    out.extend(filt.on_event(ev))
                    continue
                try:
                    event = json.loads(ev.data) if ev.data is not None else None
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                for chunk in chat.feed(event):
                    for obj in translator.feed(chunk):
                        out.extend(filt.on_object(obj, None))
                if chat.finished:
                    for obj in translator.end():
                        out.extend(filt.on_object(obj, None))
            ex.decisions(filt.decisions)
            if out and guard is not None and filt.closing:
                held.extend(out)
            elif out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
            if filt.done:
                break
        policies.after_stream(filt.decisions)
        if guard is not None:
            response = filt.final.get("response") if filt.final is not None else None
            slots = responses_output_slots(response.get("output") if isinstance(response, dict) else None)
            ctx = context(ROUTE, model, ex.id, ex.key)
            replaced = await guard_stream_end(
                guard, ctx, slots, False, filt.decisions, EVENT_TYPE, redact_is_flag=False
            )
            end = b"".join(patch_events(held, replaced))
    except Stop as stop:
        ex.ended_by("gateway", f"policy_violation: {stop.policy}")
        end = error_event(stop.policy, stop.reason, filt.last_sequence + 1)
    except anthropic.StreamError as err:
        ex.ended_by("upstream", "upstream_error")
        end = error_event(err.code, str(err), filt.last_sequence + 1)
    except (httpx.HTTPError, sse.SseProtocolError) as exc:
        ex.ended_by("upstream", "stream_interrupted")
        end = error_event(
            "stream_interrupted", f"The upstream stream broke ({type(exc).__name__}).", filt.last_sequence + 1
        )
    finally:
        ex.decisions(filt.decisions)
        if filt.usage is not None:  # reported before the bytes that end the client's stream
            ex.usage(target, filt.usage, filt.response_id)
    await send({"type": "http.response.body", "body": end, "more_body": False})
