"""From an accepted WebSocket handshake to a running session, and the breaker's verdict after it.

`HandshakeContext` is what the WebSocket door (`kt_trio.server.websocket_door`) learned about
the client once it was authenticated and admitted: the request, its pack and chosen target, its
key and address. `run_session` dials the provider (with fallback and the breakers) before the
client is answered, sends the 101, builds the `Session` with the pack's policies, limits,
budgets and guardrail, registers it, runs it to its end, and tells the breaker about a provider
that accepted and then dropped it at once.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Literal

import attrs
import trio

from kt_trio.config.schema import Target
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.guardrail.client import Context as GuardContext
from kt_trio.guardrail.edge import SessionGuard
from kt_trio.keys import KeyInfo
from kt_trio.server.front_door import ConnectionGuard
from kt_trio.server.packs import PackRuntime
from kt_trio.server.refusal import refuse
from kt_trio.server.upstream_choice import NoHealthyUpstream, dial_with_fallback
from kt_trio.session.leg import Leg
from kt_trio.session.session import Session
from kt_trio.session.upstream import DialError
from kt_trio.session.upstream_headers import answer_subprotocol
from kt_trio.wire.handshake import RequestHead, head_body_split, switching_protocols
from kt_trio.wire.transport import Transport

if TYPE_CHECKING:
    from kt_trio.server.gateway import Gateway

log = logging.getLogger("kt_trio.gateway")

# A provider that drops a session abnormally this soon after accepting it counts as a breaker
# failure (issue #4): accepted-then-dropped is how an overloaded provider often fails.
EARLY_CLOSE_SECS = 5.0
EARLY_ABNORMAL_CODES = frozenset({1006, 1011, 1013})


@attrs.frozen
class HandshakeContext:
    """One authenticated, admitted WebSocket handshake, ready to become a session."""

    transport: Transport
    head: RequestHead
    received: bytes  # the bytes read so far: the head and any frames the client sent after it
    client_ip: str
    route: str  # `/v1/realtime` or `/v1/responses` (an Azure path mapped onto it)
    model: str | None  # the model the client named, if any
    pack: PackRuntime
    target: Target  # the chosen target; a fallback may serve instead
    ws_key: str  # Sec-WebSocket-Key, for the 101
    key_info: KeyInfo | None = None
    guard: ConnectionGuard | None = None
    upstream_query: str | None = None  # the query sent upstream when it differs from the client's

    @property
    def protocol(self) -> Literal["responses", "realtime"]:
        return "responses" if self.route == "/v1/responses" else "realtime"


async def run_session(gateway: Gateway, ctx: HandshakeContext) -> None:
    """Dials the provider, answers the client with 101, and runs the session to its end."""
    pack, guard, transport = ctx.pack, ctx.guard, ctx.transport
    offered = ctx.head.header_tokens("sec-websocket-protocol")
    try:
        target, upstream, permit = await dial_with_fallback(
            pack.config,
            pack.health,
            ctx.target,
            ctx.route,
            ctx.head.query if ctx.upstream_query is None else ctx.upstream_query,
            ctx.head.raw_headers,
            offered,
            pack.secrets,
            gateway.upstream_ssl_context,
        )
    except DialError as exc:
        log.warning("upstream dial failed", extra={"fields": {"target": ctx.target.id, "detail": exc.detail}})
        await refuse(transport, gateway.metrics, exc.status, "upstream_error", exc.code, exc.message)
        return
    except NoHealthyUpstream as exc:
        await refuse(
            transport,
            gateway.metrics,
            503,
            "upstream_error",
            "circuit_open",
            str(exc),
            extra_headers=[("Retry-After", str(exc.retry_after))],
        )
        return
    try:
        await transport.send_all(switching_protocols(ctx.ws_key, answer_subprotocol(offered, upstream.subprotocol)))
        if guard is not None:
            guard.upgraded = True
        session = await new_session(gateway, ctx, target, upstream.leg)
        if guard is not None:
            guard.session_id = session.id
    except BaseException:
        upstream.leg.close_transport()
        raise
    key_info = ctx.key_info
    gateway.registry.add(session, key_info.expires_at if key_info is not None else None)
    if gateway.shutting_down:
        session.shutdown()
    log.info(
        "session start",
        extra={
            "fields": {"session_id": session.id, "route": ctx.route, "target": target.id, "client_ip": ctx.client_ip}
        },
    )
    try:
        ending = await session.run()
    finally:
        gateway.registry.discard(session)
    early = trio.current_time() - session.opened_at < EARLY_CLOSE_SECS
    if ending.closed_by == "upstream" and ending.upstream_code in EARLY_ABNORMAL_CODES and early:
        # A provider that accepts and then drops sessions at once is failing too.
        why = "upstream closed abnormally early"
        if permit is not None and pack.health.shared is not None:
            await pack.health.record_failure_shared(permit, trio.current_time(), why)
        else:
            pack.health.breaker(target.id).record_failure(trio.current_time(), why)
    elif permit is not None:
        await pack.health.record_success_shared(permit, trio.current_time())


async def new_session(gateway: Gateway, ctx: HandshakeContext, target: Target, upstream_leg: Leg) -> Session:
    """The session for this handshake, relaying to `target` (the one dialled) over `upstream_leg`."""
    pack, key_info, route = ctx.pack, ctx.key_info, ctx.route
    settings = gateway.config.session_settings(target)
    client = Leg(
        "client", ctx.transport, max_message_size=settings.max_message_size_bytes, initial=head_body_split(ctx.received)
    )
    session_id = uuid.uuid4().hex
    user_agent = ctx.head.header("user-agent")
    model = ctx.model or target.model_name
    policies = None
    if not pack.chain.is_empty:
        policies = pack.chain.new_session(
            session_id=session_id,
            user_agent=user_agent,
            client_ip=ctx.client_ip,
            protocol=ctx.protocol,
        )
    return Session(
        client,
        upstream_leg,
        settings,
        route=route,
        target=target.id,
        model=model,
        client_ip=ctx.client_ip,
        policies=policies,
        limiters=limiters(gateway, pack, key_info),
        key_tokens=await gateway.key_tokens(key_info),
        spend=await gateway.key_spend(key_info),
        budget=pack.session_budget(),
        audit=gateway.audit if pack.audited else None,
        report=gateway.reporter.emit,
        on_relay_time=gateway.metrics.relay_added.observe,
        key_name=key_info.name if key_info is not None else None,
        team=key_info.team if key_info is not None else None,
        user_agent=user_agent,
        session_id=session_id,
        message_events=gateway.config.features.websocket.message_events,
        pricing=gateway.pricing,
        allowed_models=frozenset(key_info.models) if key_info is not None and key_info.models is not None else None,
        guard=None
        if pack.guardrail is None
        else SessionGuard(
            pack.guardrail,
            GuardContext(
                route=route,
                model=model,
                session_id=session_id,
                key_name=key_info.name if key_info is not None else None,
                team=key_info.team if key_info is not None else None,
            ),
            ctx.protocol,
        ),
    )


def limiters(gateway: Gateway, pack: PackRuntime, key_info: KeyInfo | None) -> list[MessageRateLimiter]:
    """The session's message rate limiters: the pack's per connection, then the key's shared one."""
    found = []
    per_connection = pack.config.providers.rate_limit.per_connection
    if per_connection.messages_per_minute:
        found.append(
            MessageRateLimiter(per_connection.messages_per_minute, per_connection.mode, per_connection.exclude_types)
        )
    shared = gateway.key_limiter(key_info)
    if shared is not None:
        found.append(shared)
    return found
