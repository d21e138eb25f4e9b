"""What every governed HTTP door does with one request, between reading it and answering it:
judge it by the input policies (a block is the client's 400 and goes no further), record it
before anything goes upstream, and run the upstream part so that a client who leaves cancels it
and a refusal is answered in OpenAI's error shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from kt_trio.chat.asgi_io import Receive, Send, respond, watch_disconnect
from kt_trio.chat.exchange import Exchange
from kt_trio.chat.policy import Stop
from kt_trio.providers.errors import HttpRefusal, policy_refusal
from kt_trio.records import PolicyDecision


async def judged(
    ex: Exchange, request: dict[str, Any], judge: Callable[[list[PolicyDecision]], object], send: Send
) -> bool:
    """Runs `judge` (it appends its decisions and rewrites `request` in place when it redacts);
    True when the request may go upstream, its records written first (with `durability: strict`
    committed); False when a policy blocked it and the client has its 400 `policy_violation`."""
    decisions: list[PolicyDecision] = []
    try:
        judge(decisions)
    except Stop as stop:
        ex.request_seen(None, tuple(decisions))
        ex.decisions(decisions)
        r = policy_refusal(stop.policy, stop.reason)
        ex.ended_by("gateway", r.reason)
        await respond(send, r.status, r.body, r.headers)
        return False
    ex.request_seen(request, tuple(decisions))
    ex.decisions(decisions)
    await ex.write()  # nothing goes upstream unaudited
    return True


async def answered(ex: Exchange, receive: Receive, send: Send, work: Callable[[], Awaitable[None]]) -> None:
    """Runs `work` (the upstream call and the answer); the client going away cancels it at once,
    and an `HttpRefusal` it raises is answered here (the nursery would wrap it in a group)."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_disconnect, receive, nursery.cancel_scope)
        try:
            await work()
        except HttpRefusal as r:
            ex.ended_by(r.origin, r.reason)
            await respond(send, r.status, r.body, r.headers)
        finally:
            nursery.cancel_scope.cancel()


async def judged_async(
    ex: Exchange, request: dict[str, Any], judge: Callable[[list[PolicyDecision]], Awaitable[object]], send: Send
) -> bool:
    """`judged` for a judge that awaits (the policy chain, then the external guardrail): its
    decisions and its block are replayed into `judged`, which records them and answers a block."""
    early: list[PolicyDecision] = []
    stopped: Stop | None = None
    try:
        await judge(early)
    except Stop as stop:
        stopped = stop

    def replay(decisions: list[PolicyDecision]) -> None:
        decisions.extend(early)
        if stopped is not None:
            raise stopped

    return await judged(ex, request, replay, send)
