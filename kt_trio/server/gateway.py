"""The gateway: one listening port, a front door, the sessions, and shutdown.

The front door accepts each TCP connection, reads its request head (bounded in size by h11 and in
time by `HEAD_TIMEOUT`), and hands it on: a WebSocket upgrade on a proxied route becomes a
`Session` (our own lean WebSocket stack: hypercorn's ASGI WebSocket loses close codes, cannot
be cancelled out of a stuck send and ignores oversized messages, see DESIGN.md), everything else
goes to hypercorn serving the ASGI app, replaying the bytes already read.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from kt_trio.admin.app import build_admin
from kt_trio.audit import open_audit_log
from kt_trio.audit.store import default_chain
from kt_trio.chat.app import ChatApp
from kt_trio.chat.client_secrets import client_secrets_door
from kt_trio.config.packs import gateway_wide_differences, with_gateway_settings_of
from kt_trio.config.routing import upstream_model
from kt_trio.config.schema import GatewayConfig, Target
from kt_trio.events.hub import EventHub
from kt_trio.events.messages import SystemEvent
from kt_trio.events.stream import Subscribers, serve_event_stream
from kt_trio.governance.admission import Admission, ConnectionCounter
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.guardrail.client import Context as GuardContext
from kt_trio.guardrail.edge import SessionGuard
from kt_trio.keys import KEY_PREFIX, KeyInfo, KeyRing
from kt_trio.keys.client_secrets import CLIENT_SECRET_PREFIX
from kt_trio.metrics import Metrics
from kt_trio.pricing import Pricing
from kt_trio.protocol.azure_paths import azure_route, without_azure_params
from kt_trio.records import Record, SessionSummary
from kt_trio.reporting import AuditSink, Reporter
from kt_trio.server.front_door import ConnectionGuard, RequestRefused, bytes_for_hypercorn, checked_head
from kt_trio.server.http_app import HttpApp
from kt_trio.server.packs import AUDIT_LOGGER, PackRuntime, unknown_pack_message
from kt_trio.server.reload import Reloader
from kt_trio.server.replay_stream import ReplayStream
from kt_trio.server.tls import accept_tls, server_context
from kt_trio.server.upstream_choice import NoHealthyUpstream, dial_with_fallback
from kt_trio.session.leg import Leg
from kt_trio.session.session import Session
from kt_trio.session.upstream import DialError
from kt_trio.session.upstream_headers import answer_subprotocol, client_credential
from kt_trio.state import Refusal, state_for
from kt_trio.state.base import KeyBudget
from kt_trio.telemetry import start_tracing
from kt_trio.telemetry.spans import traced_session
from kt_trio.wire.frames import CloseCode
from kt_trio.wire.handshake import (
    HeadError,
    RequestHead,
    error_body,
    head_body_split,
    http_response,
    read_request_head,
    switching_protocols,
    upgrade_problem,
)
from kt_trio.wire.transport import SocketTransport, StreamTransport, Transport

log = logging.getLogger("kt_trio.gateway")

# A client gets this long to send its request head; slower is a slowloris, not a client.
HEAD_TIMEOUT = 10.0
WEBSOCKET_ROUTES = ("/v1/realtime", "/v1/responses")
EVENTS_ROUTE = "/ws/events"
# A provider that drops a session abnormally this soon after accepting it counts as a breaker
# failure (issue #4): accepted-then-dropped is how an overloaded provider often fails.
EARLY_CLOSE_SECS = 5.0
EARLY_ABNORMAL_CODES = frozenset({1006, 1011, 1013})
# How often live sessions' keys are checked for `revoke --terminate`: a revoked key's sessions
# end within about this long, at the cost of one indexed query per interval.
REVOCATION_POLL_SECS = 1.0
# What a client refused because the audit store fails is told to wait (`Retry-After`): the
# writer retries the store every second, so a freed disk is noticed about this soon.
AUDIT_RETRY_AFTER_SECS = 5
# The listen backlog: room for a burst of session openings while the accept loop catches up.
BACKLOG = 1024


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        secrets: Mapping[str, str] | None = None,
        upstream_ssl_context: ssl.SSLContext | None = None,
        more_packs: Sequence[tuple[GatewayConfig, Mapping[str, str]]] = (),
    ) -> None:
        """`config` is the default pack, which also holds the gateway-wide settings (`gateway`,
        `features`, `providers.rate_limit.per_ip`); `more_packs` are the other packs with their
        secrets (target id -> secret, as `resolve_secrets` gives), for keys bound to them."""
        self.config = config
        # None: the system's trust store (ssl.create_default_context()); tests and private CAs pass one.
        self.upstream_ssl_context = upstream_ssl_context
        self.sessions: set[Session] = set()
        self.port: int | None = None
        # The last summaries, for `kt_trio.testing` and diagnostics; bounded so a long-running
        # gateway does not grow (the audit log is the durable record).
        self.recent_summaries: deque[SessionSummary] = deque(maxlen=256)
        self.reporter = Reporter()
        self.reporter.add_sink(self._remember)
        events = config.features.websocket
        self.hub = EventHub(events.channel_capacity)
        self.metrics = Metrics(config, *(c for c, _ in more_packs))
        self.metrics.bind_event_hub(self.hub)
        self.reporter.add_sink(self.hub.publish)
        self.reporter.add_sink(self.metrics.sink)
        # OpenTelemetry traces when configured (kt_trio.telemetry); None, and nothing on any path, when off.
        self.tracing = start_tracing(config, *(c for c, _ in more_packs))
        if self.tracing is not None:
            self.reporter.add_sink(self.tracing.sink)
        # Chat requests share each key's limits and budget with its sessions, and the audit log
        # (opened in `serve`, after this: hence a callable).
        # One price table for every pack: a model without a price is reported once per gateway.
        self.pricing = Pricing(config.pricing, on_unpriced=self._unpriced)
        chat_hooks: dict[str, Any] = {
            "pricing": self.pricing,
            "audit": lambda: self.audit,
            "key_limiter": self._key_limiter,
            "key_tokens": self._key_tokens,
            "client_ip": lambda peer, forwarded: self.admission.client_ip(peer, forwarded),
            "client_secrets": client_secrets_door(self._mint_client_secret),
            "tracing": self.tracing,
        }
        self.chat_hooks = chat_hooks  # a config reload builds its packs with the same hooks
        # `serve` with config files sets it (SIGHUP, --watch, POST /admin/reload).
        self.reloader: Reloader | None = None
        self.default_pack = PackRuntime.build(config, secrets or {}, self.reporter.emit, **chat_hooks)
        self.packs: dict[str, PackRuntime] = {self.default_pack.name: self.default_pack}
        for pack_config, pack_secrets in more_packs:
            if pack_config.pack.name in self.packs:
                raise ValueError(f"two packs are named {pack_config.pack.name!r}")
            for section in gateway_wide_differences(config, pack_config):
                log.warning(
                    "pack %s sets %s differently from the default pack %s: the default pack's value is used",
                    pack_config.pack.name,
                    section,
                    config.pack.name,
                )
            pack_config = with_gateway_settings_of(config, pack_config)
            self.packs[pack_config.pack.name] = PackRuntime.build(
                pack_config, pack_secrets, self.reporter.emit, **chat_hooks
            )
        # Set by `serve` when `audit-logger` is in the chain (kt_trio.audit); sessions write to it.
        self.audit: AuditSink | None = None
        providers = config.providers
        self.admission: Admission = Admission(providers.rate_limit.per_ip.connections, config.gateway.trusted_proxies)
        # Concurrent sessions per gateway key, counted in the same ticket as the per-IP slot.
        self._key_sessions = ConnectionCounter("per_key")
        # What other processes and machines must agree on (`state.backend`, kt_trio.state).
        self.state = state_for(
            config,
            hub=self.hub,
            report=self.reporter.emit,
            registry=self.metrics.registry,
            terminate=self._terminate_keys,
        )
        for pack in self.packs.values():
            self.state.bind_health(pack.health, pack.name)
        self.keys: KeyRing | None = None
        # /ws/events subscribers (anonymous ones capped apart; keyed ones ended on revocation).
        self.subscribers = Subscribers()
        # Sessions whose key expires: ended with 1008 "key expired" by the key poll.
        self._session_expiry: dict[Session, float] = {}
        self._sessions_changed = trio.Event()
        self._shutting_down = False
        self._accept_scope = trio.CancelScope()
        # The admin API and the console's login (kt_trio.admin); other modules add routes to it.
        self.admin = build_admin(self)
        self._http_app = ASGIWrapper(
            HttpApp(  # type: ignore[arg-type]  # hypercorn's typed scopes; ours are the plain ASGI mappings
                is_ready=lambda: not self._shutting_down,
                metrics=self.metrics.render,
                chat_for=self.chat_for,
                check_key=self.check_key,
                admin=self.admin,
            )
        )
        # `gateway.tls`: the listener's TLS context (raises TlsSetupError naming a bad file).
        self._tls = server_context(config.gateway.tls)
        self._hconfig = HypercornConfig()
        self._hcontext = WorkerContext(None)

    @property
    def health(self) -> UpstreamHealth:
        """The default pack's upstream health (each pack has its own breakers)."""
        return self.default_pack.health

    def pack_for(self, key_info: KeyInfo | None) -> PackRuntime | None:
        """The pack serving this client: its key's pack, else the default; None when the key is
        bound to a pack this gateway does not serve."""
        if key_info is None or key_info.pack is None:
            return self.default_pack
        return self.packs.get(key_info.pack)

    def _mint_client_secret(self, key: KeyInfo, ttl_secs: float) -> tuple[str, float]:
        assert self.keys is not None  # HttpApp checked the key, so the key store is open
        return self.keys.mint_client_secret(key, ttl_secs)

    def chat_for(self, key_info: KeyInfo | None) -> ChatApp | None:
        pack = self.pack_for(key_info)
        return pack.chat if pack is not None else None

    # -- serving --------------------------------------------------------------------------------

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        reuse_port: bool = False,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serves until `shutdown()`; then drains within `gateway.shutdown_timeout_secs`."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # a `serve --workers` worker: the kernel spreads connections over the workers
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            lsock.bind((host, port))
            lsock.listen(BACKLOG)
            lsock.setblocking(False)
            self.port = lsock.getsockname()[1]
            async with (
                self._audit_log(),
                await KeyRing.open(self.config.gateway.state_dir, self.config.store) as keys,
                self.state.running(),
            ):
                self.keys = keys
                details = {"port": self.port, "pack": self.config.pack.name, "packs": ",".join(self.packs)}
                self.hub.publish(None, SystemEvent("startup", details))
                async with trio.open_nursery() as connections:
                    # Its own scope: the poll loop never ends by itself, and shutdown must not wait
                    # out the drain deadline for it.
                    revocations = trio.CancelScope()
                    connections.start_soon(self._terminate_revoked_keys, revocations)
                    siblings = trio.CancelScope()  # `serve --workers`: the admin API's worker socket
                    connections.start_soon(self.admin.siblings.serve, self._serve_http, siblings)
                    with self._accept_scope:
                        task_status.started(self.port)
                        await self._accept_loop(lsock, connections)
                    # Shutdown: no new connections; every session closes with 1001 on both legs.
                    lsock.close()
                    revocations.cancel()
                    siblings.cancel()
                    self.hub.publish(None, SystemEvent("shutdown", {"sessions": len(self.sessions)}))
                    await self._hcontext.terminated.set()
                    for session in list(self.sessions):
                        session.shutdown()
                    connections.cancel_scope.deadline = trio.current_time() + self.config.gateway.shutdown_timeout_secs
                # Event subscribers end after the sessions, so they see the shutdown and the last
                # session ends; the audit log is flushed on leaving its context.
                self.hub.close()
                for pack in self.packs.values():
                    await pack.chat.aclose()
                if self.reloader is not None:
                    await self.reloader.aclose()
        finally:
            lsock.close()
            if self.tracing is not None:  # the last sessions' spans are exported (bounded wait)
                await self.tracing.aclose()

    @asynccontextmanager
    async def _audit_log(self) -> AsyncIterator[None]:
        """Runs the audit log for the life of the server when some pack's chain has `audit-logger`.

        One log per gateway (it lives in `gateway.state_dir`): its store settings (durability,
        retention) are those of the first pack that names the logger."""
        audited = next((p for p in self.packs.values() if p.audited), None)
        if audited is None:
            yield
            return
        settings = audited.config.policy_settings(AUDIT_LOGGER)
        store = self.config.store  # sqlite: <state_dir>/audit.db; postgres: this instance's chain
        chain = store.instance_id or default_chain(self.port)
        async with open_audit_log(
            self.config.gateway.state_dir,
            settings,  # type: ignore[arg-type]
            backend=store,
            chain=chain,
            on_availability=self._audit_availability,
        ) as audit:
            self.audit = audit
            self.metrics.set_audit_queue_depth_source(lambda: audit.queue_depth)
            self.metrics.set_audit_available_source(lambda: audit.available)
            try:
                yield
            finally:
                self.audit = None

    def _audit_availability(self, available: bool, reason: str) -> None:
        """The audit store failed or recovered: a `system` event (the metric reads the log)."""
        event = SystemEvent("audit_available" if available else "audit_unavailable", {"reason": reason})
        self.hub.publish(None, event)

    def audit_refusal(self, pack: PackRuntime) -> tuple[int, str, str, str] | None:
        """503 `audit_unavailable` for a new session or request of an audited pack while the
        audit store fails: nothing may start that cannot be recorded."""
        audit = self.audit
        if pack.audited and audit is not None and not getattr(audit, "available", True):
            return (503, "server_error", "audit_unavailable", "the audit log is unavailable; retry later")
        return None

    async def _terminate_revoked_keys(self, scope: trio.CancelScope) -> None:
        """`keys revoke --terminate`: live sessions of a revoked key end with 1008 "key revoked"."""
        assert self.keys is not None
        with scope:
            await self._poll_revocations()

    async def _poll_revocations(self) -> None:
        """Once a second: sessions of a key revoked with `--terminate` and every subscriber of a
        revoked key end with 1008 "key revoked"; sessions and subscribers of an expired key with
        1008 "key expired". One indexed query per interval, none while no key is in use."""
        assert self.keys is not None
        while True:
            await trio.sleep(REVOCATION_POLL_SECS)
            now = time.time()
            for session, expires_at in list(self._session_expiry.items()):
                if expires_at <= now:
                    session.terminate(CloseCode.POLICY_VIOLATION, "key expired")
            keyed = [s for s in self.subscribers.open if s.key is not None]
            for sub in keyed:
                if sub.key.expires_at is not None and sub.key.expires_at <= now:
                    sub.end(CloseCode.POLICY_VIOLATION, "key expired")
            live = {s.key_name for s in self.sessions if s.key_name}
            if live:
                revoked = await self.keys.revoked_since(live)
                if revoked:
                    self._terminate_keys(revoked)
                    await self.state.announce_revoked(revoked)  # other instances act at once
            if keyed:
                gone = await self.keys.revoked({s.key.name for s in keyed})
                for sub in keyed:
                    if sub.key.name in gone:
                        sub.end(CloseCode.POLICY_VIOLATION, "key revoked")

    def _terminate_keys(self, names: set[str]) -> None:
        for session in list(self.sessions):
            if session.key_name in names:
                session.terminate(CloseCode.POLICY_VIOLATION, "key revoked")

    def shutdown(self) -> None:
        self._shutting_down = True
        self._accept_scope.cancel()

    async def _accept_loop(self, lsock: socket.socket, nursery: trio.Nursery) -> None:
        while True:
            try:
                conn, addr = lsock.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(lsock)
                continue
            except OSError as exc:
                # EMFILE and friends: log, back off briefly, keep serving the sessions we have.
                log.warning("accept failed", extra={"fields": {"error": str(exc)}})
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self._handle_connection, conn, addr[0])

    async def _handle_connection(self, sock: socket.socket, peer_ip: str) -> None:
        if self._tls is not None:
            await self._handle_tls_connection(sock, peer_ip, self._tls)
            return
        transport = SocketTransport(sock)
        guard = ConnectionGuard(transport)
        try:
            with guard.contained():
                await self._serve_connection(
                    transport, lambda: trio.SocketStream(trio.socket.from_stdlib_socket(sock)), peer_ip, guard
                )
            await guard.answer_failure()
        finally:
            if guard.answered:
                sock.close()  # handed off: its new owner closed it, or failed before it could
            else:
                transport.close()

    async def _handle_tls_connection(self, sock: socket.socket, peer_ip: str, ctx: ssl.SSLContext) -> None:
        """`gateway.tls`: the same front door behind a TLS handshake of the connection's own."""
        guard = ConnectionGuard(None)
        try:
            with guard.contained():
                stream = await accept_tls(sock, ctx, guard.id)
                if stream is None:
                    return
                transport = guard.transport = StreamTransport(stream)
                await self._serve_connection(transport, lambda: stream, peer_ip, guard)
            await guard.answer_failure()
        finally:
            sock.close()

    async def _serve_connection(
        self,
        transport: Transport,
        open_stream: Callable[[], trio.abc.Stream],
        peer_ip: str,
        guard: ConnectionGuard,
    ) -> None:
        """Reads the request head and hands the connection to what serves it. `open_stream`
        gives the connection as a trio Stream, for those who take it over (events, HTTP)."""
        head: RequestHead | None = None
        received = b""
        with trio.move_on_after(HEAD_TIMEOUT):
            try:
                head, received = await read_request_head(transport)
            except HeadError as exc:
                await self._refuse(transport, 400, "invalid_request_error", "bad_request", f"bad request head: {exc}")
                return
        if head is None:
            return
        try:
            checked = checked_head(head)
        except RequestRefused as exc:
            await self._refuse(transport, exc.status, "invalid_request_error", exc.code, exc.message)
            return
        if checked.is_websocket_upgrade and checked.path == EVENTS_ROUTE:
            guard.answered = True  # the event stream answers for itself from here
            stream = ReplayStream(open_stream(), received)
            await serve_event_stream(
                self.hub,
                self.config.features.websocket,
                stream,
                checked,
                on_refused=self.metrics.handshake_rejected,
                check_key=self.check_key,
                subscribers=self.subscribers,
                console=self.admin.auth.console_login,
            )
            return
        if checked.is_websocket_upgrade:
            await self._open_websocket(transport, checked, received, peer_ip, guard)
            return
        guard.answered = True  # hypercorn answers (500s included) from here
        await self._serve_http(open_stream(), bytes_for_hypercorn(head, checked, received))

    async def _serve_http(self, connection: trio.abc.Stream, received: bytes) -> None:
        stream = ReplayStream(connection, received)
        await TCPServer(self._http_app, self._hconfig, self._hcontext, ConnectionState({}), stream)  # type: ignore[arg-type]

    # -- WebSocket sessions ---------------------------------------------------------------------

    async def _open_websocket(
        self,
        transport: Transport,
        head: RequestHead,
        received: bytes,
        peer_ip: str,
        guard: ConnectionGuard | None = None,
    ) -> None:
        route, upstream_query, deployment = head.path, head.query, None
        azure = azure_route(route, head.query)
        if azure is not None:  # an Azure client: /openai/realtime?api-version=...&deployment=...
            route, deployment = azure.path, azure.deployment
            upstream_query = without_azure_params(head.query)
        if route not in WEBSOCKET_ROUTES or not self.config.gateway.websocket.enabled:
            await self._refuse(transport, 404, "invalid_request_error", "not_found", f"no WebSocket route at {route}")
            return
        problem = upgrade_problem(head)
        if problem is not None:
            await self._refuse(transport, 400, "invalid_request_error", "bad_request", problem)
            return
        key = head.header("sec-websocket-key") or ""
        if head.header("sec-websocket-version") != "13":
            await self._refuse(
                transport,
                426,
                "invalid_request_error",
                "bad_request",
                "unsupported WebSocket version",
                extra_headers=[("Sec-WebSocket-Version", "13")],
            )
            return
        key_info = await self._authenticate(transport, head, scope="realtime")
        if key_info is False:
            return
        pack = self.pack_for(key_info)
        if pack is None:
            assert key_info is not None
            await self._refuse(transport, 403, "permission_error", "unknown_pack", unknown_pack_message(key_info))
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
            await self._refuse(transport, 404, "invalid_request_error", "model_not_found", f"no target serves {what}")
            return
        if key_info is not None and key_info.models is not None and (model or target.model) not in key_info.models:
            message = f"gateway key {key_info.name!r} may not use model {model or target.model!r}"
            await self._refuse(transport, 403, "permission_error", "model_not_allowed", message)
            return
        audit_down = self.audit_refusal(pack)
        if audit_down is not None:
            await self._refuse(transport, *audit_down, extra_headers=[("Retry-After", str(AUDIT_RETRY_AFTER_SECS))])
            return
        ip = self.admission.client_ip(peer_ip, head.header("x-forwarded-for"))
        per_key = []
        if key_info is not None and key_info.max_sessions:
            per_key.append((self._key_sessions, key_info.name, key_info.max_sessions))
        ticket = self.admission.admit(ip, per_key)
        if ticket is None:
            whose = "this address" if self.admission.per_ip.has_room(ip) else "this key"
            await self._refuse(
                transport,
                429,
                "rate_limit_exceeded",
                "too_many_connections",
                f"too many concurrent sessions from {whose}",
                extra_headers=[("Retry-After", str(self.admission.retry_after_secs))],
            )
            return
        with ticket:  # released exactly once, however the session ends
            slot = await self.state.admit(ip, self.admission.per_ip.limit, key_info)
            if isinstance(slot, Refusal):
                retry = [("Retry-After", str(slot.retry_after))]
                await self._refuse(transport, slot.status, slot.err_type, slot.code, slot.message, extra_headers=retry)
                return
            async with slot:  # the cluster's slots, released (or left to expire) at the end
                with traced_session(self.tracing, head, route):
                    await self._run_session(
                        transport, head, received, ip, route, model, pack, target, key, key_info, guard, upstream_query
                    )

    async def _authenticate(
        self, transport: Transport, head: RequestHead, *, scope: str
    ) -> KeyInfo | Literal[False] | None:
        """The client's gateway key, None for an anonymous client, or False once refused."""
        credential = client_credential(head.headers, head.header_tokens("sec-websocket-protocol"))
        key_info, refusal = await self.check_key(credential.value if credential is not None else None, scope=scope)
        if refusal is not None:
            await self._refuse(transport, *refusal)
            return False
        return key_info

    async def check_key(
        self, presented: str | None, *, scope: str
    ) -> tuple[KeyInfo | None, tuple[int, str, str, str] | None]:
        """(key, None) for an accepted or anonymous client, (None, refusal) otherwise, where a
        refusal is (HTTP status, error type, code, message), the same for every route.

        A `kt_gk_` key is always checked. Anything else in the credential headers is taken for a
        provider key an SDK sends by habit: ignored (and never forwarded) unless keys are required.
        """
        if presented is not None and not presented.startswith((KEY_PREFIX, CLIENT_SECRET_PREFIX)):
            presented = None
        if presented is None and not self.config.gateway.auth.require_keys:
            return None, None
        if self.keys is None:
            return None, (503, "server_error", "keys_unavailable", "the key store is not open")
        decision = await self.keys.authenticate(presented, scope=scope)
        if decision.ok:
            return decision.key, None
        if decision.status == 403:
            return None, (403, "permission_error", "key_scope", decision.message)
        return None, (decision.status, "authentication_error", "invalid_key", decision.message)

    async def _run_session(
        self,
        transport: Transport,
        head: RequestHead,
        received: bytes,
        ip: str,
        route: str,
        model: str | None,
        pack: PackRuntime,
        primary: Target,
        key: str,
        key_info: KeyInfo | None = None,
        guard: ConnectionGuard | None = None,
        upstream_query: str | None = None,
    ) -> None:
        offered = head.header_tokens("sec-websocket-protocol")
        try:
            target, upstream, permit = await dial_with_fallback(
                pack.config,
                pack.health,
                primary,
                route,
                head.query if upstream_query is None else upstream_query,
                head.raw_headers,
                offered,
                pack.secrets,
                self.upstream_ssl_context,
            )
        except DialError as exc:
            log.warning("upstream dial failed", extra={"fields": {"target": primary.id, "detail": exc.detail}})
            await self._refuse(transport, exc.status, "upstream_error", exc.code, exc.message)
            return
        except NoHealthyUpstream as exc:
            await self._refuse(
                transport,
                503,
                "upstream_error",
                "circuit_open",
                str(exc),
                extra_headers=[("Retry-After", str(exc.retry_after))],
            )
            return
        try:
            await transport.send_all(switching_protocols(key, answer_subprotocol(offered, upstream.subprotocol)))
            if guard is not None:
                guard.upgraded = True
            session = await self._new_session(
                transport, head, received, ip, route, model, pack, target, key_info, upstream.leg
            )
            if guard is not None:
                guard.session_id = session.id
        except BaseException:
            upstream.leg.close_transport()
            raise
        self._add_session(session)
        if key_info is not None and key_info.expires_at is not None:
            self._session_expiry[session] = key_info.expires_at
        if self._shutting_down:
            session.shutdown()
        log.info(
            "session start",
            extra={"fields": {"session_id": session.id, "route": route, "target": target.id, "client_ip": ip}},
        )
        try:
            ending = await session.run()
        finally:
            self._discard_session(session)
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

    async def _new_session(
        self,
        transport: Transport,
        head: RequestHead,
        received: bytes,
        ip: str,
        route: str,
        model: str | None,
        pack: PackRuntime,
        target: Target,
        key_info: KeyInfo | None,
        upstream_leg: Leg,
    ) -> Session:
        settings = self.config.session_settings(target)
        client = Leg(
            "client", transport, max_message_size=settings.max_message_size_bytes, initial=head_body_split(received)
        )
        session_id = uuid.uuid4().hex
        user_agent = head.header("user-agent")
        policies = None
        if not pack.chain.is_empty:
            policies = pack.chain.new_session(
                session_id=session_id,
                user_agent=user_agent,
                client_ip=ip,
                protocol="responses" if route == "/v1/responses" else "realtime",
            )
        return Session(
            client,
            upstream_leg,
            settings,
            route=route,
            target=target.id,
            model=model or target.model_name,
            client_ip=ip,
            policies=policies,
            limiters=self._limiters(pack, key_info),
            key_tokens=await self._key_tokens(key_info),
            budget=pack.session_budget(),
            audit=self.audit if pack.audited else None,
            report=self.reporter.emit,
            on_relay_time=self.metrics.observe_relay_added,
            key_name=key_info.name if key_info is not None else None,
            team=key_info.team if key_info is not None else None,
            user_agent=user_agent,
            session_id=session_id,
            message_events=self.config.features.websocket.message_events,
            pricing=self.pricing,
            allowed_models=frozenset(key_info.models) if key_info is not None and key_info.models is not None else None,
            guard=None
            if pack.guardrail is None
            else SessionGuard(
                pack.guardrail,
                GuardContext(
                    route=route,
                    model=model or target.model_name,
                    session_id=session_id,
                    key_name=key_info.name if key_info is not None else None,
                    team=key_info.team if key_info is not None else None,
                ),
                "responses" if route == "/v1/responses" else "realtime",
            ),
        )

    def _unpriced(self, model: str) -> None:
        """A model with no price: said once, in the log and on the event stream, never guessed."""
        log.warning("model has no price; its usage costs 0 until pricing.%s is set", model)
        self.hub.publish(None, SystemEvent("model_unpriced", {"model": model}))

    def _limiters(self, pack: PackRuntime, key_info: KeyInfo | None) -> list[MessageRateLimiter]:
        limiters = []
        per_connection = pack.config.providers.rate_limit.per_connection
        if per_connection.messages_per_minute:
            limiters.append(
                MessageRateLimiter(
                    per_connection.messages_per_minute, per_connection.mode, per_connection.exclude_types
                )
            )
        shared = self._key_limiter(key_info)
        if shared is not None:
            limiters.append(shared)
        return limiters

    def _key_limiter(self, key_info: KeyInfo | None) -> MessageRateLimiter | None:
        """One bucket per key, shared by its sessions and chat requests; bounded by the number of
        keys in use."""
        if key_info is None or not key_info.messages_per_minute:
            return None
        return self.state.key_limiter(key_info.name, key_info.messages_per_minute)

    async def _key_tokens(self, key_info: KeyInfo | None) -> KeyBudget | None:
        if key_info is None or not key_info.daily_tokens or self.keys is None:
            return None
        budget = self.state.key_budget(self.keys, key_info.name, key_info.daily_tokens)
        await budget.refresh()
        return budget

    def _add_session(self, session: Session) -> None:
        self.sessions.add(session)
        self._notify()

    def _discard_session(self, session: Session) -> None:
        self.sessions.discard(session)
        self._session_expiry.pop(session, None)
        self._notify()

    def _notify(self) -> None:
        self._sessions_changed.set()
        self._sessions_changed = trio.Event()

    async def wait_sessions(self, predicate: Callable[[int], bool]) -> None:
        """Waits until `predicate(number of open sessions)` holds; no polling."""
        while not predicate(len(self.sessions)):
            await self._sessions_changed.wait()

    def _remember(self, session_id: str | None, record: Record) -> None:
        if not isinstance(record, SessionSummary):
            return
        summary = record
        self.recent_summaries.append(summary)
        log.info(
            "session end",
            extra={
                "fields": {
                    "session_id": summary.session_id,
                    "route": summary.route,
                    "target": summary.target,
                    "model": summary.model,
                    "close_code": summary.close_code,
                    "close_reason": summary.close_reason,
                    "closed_by": summary.closed_by,
                    "messages_in": summary.messages_in,
                    "messages_out": summary.messages_out,
                    "bytes_in": summary.bytes_in,
                    "bytes_out": summary.bytes_out,
                    "total_tokens": summary.usage.total_tokens,
                    "duration_secs": round(summary.duration_secs, 3),
                }
            },
        )

    async def _refuse(
        self,
        transport: Transport,
        status: int,
        err_type: str,
        code: str,
        message: str,
        *,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """A plain-HTTP refusal of a handshake (DESIGN.md), counted by reason and logged once."""
        self.metrics.handshake_rejected(code)
        log.info("handshake refused", extra={"fields": {"status": status, "reason": code, "detail": message}})
        body = error_body(status, err_type, code, message)
        try:
            await transport.send_all(http_response(status, body, extra_headers=extra_headers or ()))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
