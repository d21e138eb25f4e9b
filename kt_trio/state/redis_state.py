"""`state.backend: redis`: the cluster's shared state, one `RedisLink` per process.

What a session opening costs in round trips: one for its slots and its first target's breaker
permit together (`leases.OPEN`), and, for a key with a daily token budget, one to read the
day's total (and one per daily USD budget of the key or its team), and, for a `kt_ek_` client
secret minted by another process and not seen here before, one to read it (`client_secrets`).
Its events cost none while no other instance has a `/ws/events` subscriber (`fanout`). A relayed
message costs none.

Availability (`state.on_unavailable`): when Redis cannot be reached, new sessions are refused
with 503 `state_unavailable` (`fail_closed`) or admitted on this instance's own limits
(`fail_open`); open sessions are never touched. Each change is a `system` event
(`state_unavailable` / `state_available`) and the `kt_state_backend_up` gauge.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge

from kt_trio.config.schema import GatewayConfig
from kt_trio.events.hub import EventHub
from kt_trio.events.messages import SystemEvent, SystemKind
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.keys import KeyInfo, KeyRing
from kt_trio.records import Record, SpendScope
from kt_trio.state.base import UNAVAILABLE_MESSAGE, Refusal, StateUnavailable, instance_id
from kt_trio.state.breakers import SharedBreakers
from kt_trio.state.client_secrets import SharedClientSecrets
from kt_trio.state.embedded import NO_SLOT, NoSlot
from kt_trio.state.fanout import ENTER_TIMEOUT_SECS, Fanout
from kt_trio.state.key_limits import SharedKeyBudget, SharedKeyLimiter, SharedKeyLimits
from kt_trio.state.leases import Lease, RedisLeases, ip_slots, key_slots
from kt_trio.state.link import RedisLink
from kt_trio.state.usd_spend import SharedSpend, SharedSpends

log = logging.getLogger("kt_trio.state")

UNAVAILABLE = Refusal(503, "server_error", "state_unavailable", UNAVAILABLE_MESSAGE)


class RedisState:
    backend = "redis"

    def __init__(
        self,
        config: GatewayConfig,
        *,
        hub: EventHub,
        report: Callable[[str | None, Record], None],
        registry: CollectorRegistry,
        terminate: Callable[[set[str]], None],
    ) -> None:
        settings = config.state
        self.instance = instance_id()
        self.fail_open = settings.on_unavailable == "fail_open"
        self._hub = hub
        self._up = Gauge(
            "kt_state_backend_up",
            "1 while shared state (redis) answers, else 0.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self._up.set(1)
        self._transitions = Counter(
            "kt_state_backend_transitions", "Shared state became unavailable or available.", ["to"], registry=registry
        )
        self.link = RedisLink(settings.redis_url, on_change=self._changed)
        self.leases = RedisLeases(self.link, self.instance, settings.lease_ttl_secs)
        self.limits = SharedKeyLimits(self.link, report)
        self.spends = SharedSpends(self.link, report)
        self.fanout = Fanout(self.link, self.instance, hub, terminate)
        self.client_secrets = SharedClientSecrets(self.link, fail_open=self.fail_open)

    def _changed(self, up: bool, why: str) -> None:
        self._up.set(1 if up else 0)
        self._transitions.labels("available" if up else "unavailable").inc()
        kind: SystemKind = "state_available" if up else "state_unavailable"
        self._hub.publish(None, SystemEvent(kind, {"backend": "redis", "redis": self.link.where, "reason": why}))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.link.run)
            nursery.start_soon(self.leases.heartbeat)
            nursery.start_soon(self.leases.releaser)
            nursery.start_soon(self.limits.run)
            nursery.start_soon(self.spends.run)
            nursery.start_soon(self.fanout.publisher)
            nursery.start_soon(self.fanout.subscriber)
            nursery.start_soon(self.fanout.listeners)
            nursery.start_soon(self.client_secrets.run)
            with trio.move_on_after(ENTER_TIMEOUT_SECS + self.link.op_timeout * 2):
                await self.fanout.ready.wait()  # subscribed, and knows who listens
            try:
                yield
            finally:
                await self.leases.flush()  # the last sessions' leases, while the client is open
                nursery.cancel_scope.cancel()

    async def admit(
        self, ip: str, ip_limit: int | None, key: KeyInfo | None, breaker: tuple[UpstreamHealth, str] | None = None
    ) -> Lease | NoSlot | Refusal:
        wanted: list[tuple[str, int]] = []
        if ip_limit is not None:
            wanted.append((ip_slots(ip), ip_limit))
        if key is not None and key.max_sessions:
            wanted.append((key_slots(key.name), key.max_sessions))
        if not self.link.available:
            return NO_SLOT if self.fail_open else UNAVAILABLE
        # The first target's breaker permit rides in the same script: the dial takes it from there.
        shared: SharedBreakers | None = None
        if breaker is not None and isinstance(breaker[0].shared, SharedBreakers):
            shared = breaker[0].shared
            local = breaker[0].breaker(breaker[1])
        try:
            got, answer = await self.leases.acquire(
                wanted, None if shared is None else (shared.key(local.target), shared.acquire_args(local))
            )
        except StateUnavailable:
            return NO_SLOT if self.fail_open else UNAVAILABLE
        if isinstance(got, int):
            whose = "this address" if wanted[got - 1][0].startswith("kt:slots:ip:") else "this key"
            return Refusal(
                429, "rate_limit_exceeded", "too_many_connections", f"too many concurrent sessions from {whose}"
            )
        if shared is not None and answer is not None:
            shared.prefetched(local, answer)
        return got

    def key_limiter(self, name: str, messages_per_minute: int) -> SharedKeyLimiter:
        return self.limits.limiter(name, messages_per_minute)

    def key_budget(self, ring: KeyRing, name: str, daily_tokens: int) -> SharedKeyBudget:
        return self.limits.budget(name, daily_tokens)

    def spend_ledger(
        self, ring: KeyRing, scope: SpendScope, name: str, limit_usd: float, team: str | None
    ) -> SharedSpend:
        return self.spends.ledger(scope, name, limit_usd, team)

    def bind_health(self, health: UpstreamHealth, pack: str) -> None:
        health.shared = SharedBreakers(self.link, pack)

    async def announce_revoked(self, names: Iterable[str]) -> None:
        await self.fanout.announce_revoked(names)
