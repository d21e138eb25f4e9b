"""The WebSocket door: a `/v1/realtime` or `/v1/responses` upgrade checked, authenticated and
admitted before anything is dialled.

In order, each refusal a plain-HTTP answer (`kt_trio.server.refusal`): the route (Azure's
`/openai/realtime?deployment=...` mapped onto it), the upgrade's headers, the gateway key and the
pack it is bound to, the target for the named model and the key's `--models`, the audit store,
then the per-IP and per-key session counts here and the cluster's slots (`SharedState.admit`).
What passes becomes a `HandshakeContext` for `kt_trio.server.session_start`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlencode

from kt_trio.config.routing import upstream_model
from kt_trio.keys import KeyInfo
from kt_trio.protocol.azure_paths import azure_route, without_azure_params
from kt_trio.server.front_door import ConnectionGuard
from kt_trio.server.packs import unknown_pack_message
from kt_trio.server.refusal import AUDIT_RETRY_AFTER_SECS, refuse
from kt_trio.server.session_start import HandshakeContext, run_session
from kt_trio.session.upstream_headers import client_credential
from kt_trio.state import Refusal
from kt_trio.telemetry.spans import traced_session
from kt_trio.wire.handshake import RequestHead, upgrade_problem
from kt_trio.wire.transport import Transport

if TYPE_CHECKING:
    from kt_trio.server.gateway import Gateway

WEBSOCKET_ROUTES = ("/v1/realtime", "/v1/responses")


async def open_websocket(
    gateway: Gateway,
    transport: Transport,
    head: RequestHead,
    received: bytes,
    peer_ip: str,
    guard: ConnectionGuard | None = None,
) -> None:
    """Serves one WebSocket upgrade: refused with a plain-HTTP answer, or run as a session."""
    metrics = gateway.metrics
    route, upstream_query, deployment = head.path, head.query, None
    azure = azure_route(route, head.query)
    if azure is not None:  # an Azure client: /openai/realtime?api-version=...&deployment=...
        route, deployment = azure.path, azure.deployment
        upstream_query = without_azure_params(head.query)
    if route not in WEBSOCKET_ROUTES or not gateway.config.gateway.websocket.enabled:
        await refuse(transport, metrics, 404, "invalid_request_error", "not_found", f"no WebSocket route at {route}")
        return
    problem = upgrade_problem(head)
    if problem is not None:
        await refuse(transport, metrics, 400, "invalid_request_error", "bad_request", problem)
        return
    key = head.header("sec-websocket-key") or ""
    if head.header("sec-websocket-version") != "13":
        await refuse(
            transport,
            metrics,
            426,
            "invalid_request_error",
            "bad_request",
            "unsupported WebSocket version",
            extra_headers=[("Sec-WebSocket-Version", "13")],
        )
        return
    key_info = await _authenticate(gateway, transport, head, scope="realtime")
    if key_info is False:
        return
    pack = gateway.pack_for(key_info)
    if pack is None:
        assert key_info is not None
        await refuse(transport, metrics, 403, "permission_error", "unknown_pack", unknown_pack_message(key_info))
        return
    query = parse_qs(head.query)
    model = query.get("model", [None])[0]
    target = pack.config.find_websocket_target(model, deployment=deployment)
    if azure is not None and model is None and target is not None and target.provider == "openai":
        # OpenAI's Realtime URL names its model; an Azure client named a deployment instead.
        model = upstream_model(deployment, target)
        upstream_query = "&".join(q for q in (upstream_query, urlencode({"model": model})) if q)
    if target is None:
        what = f"model {model!r}" if model else "a WebSocket target"
        await refuse(transport, metrics, 404, "invalid_request_error", "model_not_found", f"no target serves {what}")
        return
    if key_info is not None and key_info.models is not None and (model or target.model) not in key_info.models:
        message = f"gateway key {key_info.name!r} may not use model {model or target.model!r}"
        await refuse(transport, metrics, 403, "permission_error", "model_not_allowed", message)
        return
    audit_down = gateway.audit_refusal(pack)
    if audit_down is not None:
        retry = [("Retry-After", str(AUDIT_RETRY_AFTER_SECS))]
        await refuse(transport, metrics, *audit_down, extra_headers=retry)
        return
    admission = gateway.admission
    ip = admission.client_ip(peer_ip, head.header("x-forwarded-for"))
    per_key = []
    if key_info is not None and key_info.max_sessions:
        per_key.append((gateway.key_sessions, key_info.name, key_info.max_sessions))
    ticket = admission.admit(ip, per_key)
    if ticket is None:
        whose = "this address" if admission.per_ip.has_room(ip) else "this key"
        await refuse(
            transport,
            metrics,
            429,
            "rate_limit_exceeded",
            "too_many_connections",
            f"too many concurrent sessions from {whose}",
            extra_headers=[("Retry-After", str(admission.retry_after_secs))],
        )
        return
    with ticket:  # released exactly once, however the session ends
        slot = await gateway.state.admit(ip, admission.per_ip.limit, key_info)
        if isinstance(slot, Refusal):
            retry = [("Retry-After", str(slot.retry_after))]
            await refuse(transport, metrics, slot.status, slot.err_type, slot.code, slot.message, extra_headers=retry)
            return
        async with slot:  # the cluster's slots, released (or left to expire) at the end
            ctx = HandshakeContext(
                transport=transport,
                head=head,
                received=received,
                client_ip=ip,
                route=route,
                model=model,
                pack=pack,
                target=target,
                ws_key=key,
                key_info=key_info,
                guard=guard,
                upstream_query=upstream_query,
            )
            with traced_session(gateway.tracing, head, route):
                await run_session(gateway, ctx)


async def _authenticate(
    gateway: Gateway, transport: Transport, head: RequestHead, *, scope: str
) -> KeyInfo | Literal[False] | None:
    """The client's gateway key, None for an anonymous client, or False once refused."""
    credential = client_credential(head.headers, head.header_tokens("sec-websocket-protocol"))
    key_info, refusal = await gateway.check_key(credential.value if credential is not None else None, scope=scope)
    if refusal is not None:
        await refuse(transport, gateway.metrics, *refusal)
        return False
    return key_info
