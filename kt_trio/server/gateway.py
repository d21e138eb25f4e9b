"""The gateway: one listening port, its packs, the sessions, and shutdown.

`Gateway` wires the parts together and owns their lifetime: the packs (`kt_trio.server.packs`),
the reporter with its sinks (event hub, metrics, recent summaries), admission and shared state,
the key store and the audit log (opened in `serve`). Its jobs live beside it:
`kt_trio.server.connections` (listener, accept loop, TLS, the request head and the hand-off by
route), `kt_trio.server.websocket_door` (handshake checks, authentication, admission),
`kt_trio.server.session_start` (dial, 101, the session, the breaker's verdict),
`kt_trio.server.session_registry` (live sessions, revocation and expiry) and
`kt_trio.server.refusal` (plain-HTTP refusals).
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper

from kt_trio.admin.app import build_admin
from kt_trio.audit import open_audit_log
from kt_trio.audit.store import default_chain
from kt_trio.chat.app import ChatApp
from kt_trio.chat.client_secrets import client_secrets_door
from kt_trio.config.packs import gateway_wide_differences, with_gateway_settings_of
from kt_trio.config.schema import GatewayConfig
from kt_trio.events.hub import EventHub
from kt_trio.events.messages import SystemEvent
from kt_trio.events.stream import Subscribers
from kt_trio.governance.admission import Admission, ConnectionCounter
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.governance.spend import SpendMeter
from kt_trio.keys import KEY_PREFIX, KeyInfo, KeyRing
from kt_trio.keys.client_secrets import CLIENT_SECRET_PREFIX
from kt_trio.metrics import Metrics
from kt_trio.pricing import Pricing
from kt_trio.records import Record, SessionSummary
from kt_trio.reporting import AuditSink, Reporter
from kt_trio.server import refusal
from kt_trio.server.connections import Connections, open_listener
from kt_trio.server.http_app import HttpApp
from kt_trio.server.packs import AUDIT_LOGGER, PackRuntime
from kt_trio.server.refusal import HttpRefusal
from kt_trio.server.reload import Reloader
from kt_trio.server.reload_triggers import add_reload_route
from kt_trio.server.session_registry import SessionRegistry
from kt_trio.server.supervisor import worker_chain
from kt_trio.server.usd_budget import key_spend
from kt_trio.session.session import Session
from kt_trio.state import state_for
from kt_trio.state.base import KeyBudget
from kt_trio.telemetry import start_tracing

log = logging.getLogger("kt_trio.gateway")


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
        # The live sessions (`sessions` is the registry's own set, for tests and diagnostics).
        self.registry = SessionRegistry()
        self.sessions: set[Session] = self.registry.sessions
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
            "key_limiter": self.key_limiter,
            "key_tokens": self.key_tokens,
            "key_spend": self.key_spend,
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
        self.key_sessions = ConnectionCounter("per_key")
        # What other processes and machines must agree on (`state.backend`, kt_trio.state).
        self.state = state_for(
            config,
            hub=self.hub,
            report=self.reporter.emit,
            registry=self.metrics.registry,
            terminate=self.registry.terminate_keys,
        )
        for pack in self.packs.values():
            self.state.bind_health(pack.health, pack.name)
        self.keys: KeyRing | None = None
        # /ws/events subscribers (anonymous ones capped apart; keyed ones ended on revocation).
        self.subscribers = Subscribers()
        self.shutting_down = False
        self._accept_scope = trio.CancelScope()
        # The admin API and the console's login (kt_trio.admin); other modules add routes to it.
        self.admin = build_admin(self)
        add_reload_route(self.admin, self)  # POST /admin/reload (kt_trio.server.reload_triggers)
        http_app = ASGIWrapper(
            HttpApp(  # type: ignore[arg-type]  # hypercorn's typed scopes; ours are the plain ASGI mappings
                is_ready=lambda: not self.shutting_down,
                metrics=self.metrics.render,
                chat_for=self.chat_for,
                check_key=self.check_key,
                admin=self.admin,
            )
        )
        # Raises TlsSetupError naming a bad file of `gateway.tls`.
        self.connections = Connections(self, http_app)

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

    async def _mint_client_secret(self, key: KeyInfo, ttl_secs: float) -> tuple[str, float]:
        assert self.keys is not None  # HttpApp checked the key, so the key store is open
        return await self.keys.mint_client_secret(key, ttl_secs)

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
        lsock = open_listener(host, port, reuse_port=reuse_port)
        try:
            self.port = lsock.getsockname()[1]
            async with (
                self._audit_log(),
                await KeyRing.open(
                    self.config.gateway.state_dir, self.config.store, client_secrets=self.state.client_secrets
                ) as keys,
                self.state.running(),
            ):
                self.keys = keys
                details = {"port": self.port, "pack": self.config.pack.name, "packs": ",".join(self.packs)}
                self.hub.publish(None, SystemEvent("startup", details))
                async with trio.open_nursery() as nursery:
                    # Its own scope: the poll loop never ends by itself, and shutdown must not wait
                    # out the drain deadline for it.
                    revocations = trio.CancelScope()
                    nursery.start_soon(self._terminate_revoked_keys, revocations)
                    siblings = trio.CancelScope()  # `serve --workers`: the admin API's worker socket
                    if self.admin.siblings.enabled:
                        nursery.start_soon(self.admin.siblings.serve, self.connections.serve_http, siblings)
                    with self._accept_scope:
                        task_status.started(self.port)
                        await self.connections.accept_loop(lsock, nursery)
                    # Shutdown: no new connections; every session closes with 1001 on both legs.
                    lsock.close()
                    revocations.cancel()
                    siblings.cancel()
                    self.hub.publish(None, SystemEvent("shutdown", {"sessions": len(self.sessions)}))
                    await self.connections.stop_http()
                    for session in list(self.sessions):
                        session.shutdown()
                    nursery.cancel_scope.deadline = trio.current_time() + self.config.gateway.shutdown_timeout_secs
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
        chain = worker_chain(store.instance_id or default_chain(self.port))  # one chain per writer
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

    def audit_refusal(self, pack: PackRuntime) -> HttpRefusal | None:
        """503 `audit_unavailable` for a new session or request of an audited pack while the
        audit store fails: nothing may start that cannot be recorded."""
        return refusal.audit_refusal(pack, self.audit)

    async def _terminate_revoked_keys(self, scope: trio.CancelScope) -> None:
        """`keys revoke --terminate` and key expiry end live sessions and subscribers (the poll)."""
        assert self.keys is not None
        with scope:
            await self.registry.poll_revocations(self.keys, self.subscribers, self.state)

    def shutdown(self) -> None:
        self.shutting_down = True
        self._accept_scope.cancel()

    async def check_key(self, presented: str | None, *, scope: str) -> tuple[KeyInfo | None, HttpRefusal | None]:
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
        if decision.status == 503:  # a client secret only Redis knows, while Redis is away
            return None, (503, "server_error", "state_unavailable", decision.message)
        return None, (decision.status, "authentication_error", "invalid_key", decision.message)

    def _unpriced(self, model: str) -> None:
        """A model with no price: said once, in the log and on the event stream, never guessed."""
        log.warning("model has no price; its usage costs 0 until pricing.%s is set", model)
        self.hub.publish(None, SystemEvent("model_unpriced", {"model": model}))

    def key_limiter(self, key_info: KeyInfo | None) -> MessageRateLimiter | None:
        """One bucket per key, shared by its sessions and chat requests; bounded by the number of
        keys in use."""
        if key_info is None or not key_info.messages_per_minute:
            return None
        return self.state.key_limiter(key_info.name, key_info.messages_per_minute)

    async def key_spend(self, key_info: KeyInfo | None) -> SpendMeter | None:
        """The key's and its team's daily USD budgets (`kt_trio.server.usd_budget`), read fresh."""
        return await key_spend(self.config.teams, self.state, self.keys, key_info)

    async def key_tokens(self, key_info: KeyInfo | None) -> KeyBudget | None:
        if key_info is None or not key_info.daily_tokens or self.keys is None:
            return None
        budget = self.state.key_budget(self.keys, key_info.name, key_info.daily_tokens)
        await budget.refresh()
        return budget

    async def wait_sessions(self, predicate: Callable[[int], bool]) -> None:
        """Waits until `predicate(number of open sessions)` holds; no polling."""
        await self.registry.wait(predicate)

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
