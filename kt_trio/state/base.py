"""The interface both backends give the gateway, and the choice between them."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol

from attrs import frozen
from prometheus_client import CollectorRegistry

from kt_trio.config.schema import GatewayConfig
from kt_trio.events.hub import EventHub
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.governance.spend import SpendLedger
from kt_trio.keys import KeyInfo, KeyRing
from kt_trio.keys.client_secrets import SecretStore
from kt_trio.records import Record, SpendScope
from kt_trio.reporting import KeyTokens


class StateUnavailable(Exception):
    """Shared state could not be read or written now (Redis down, hung or unreachable)."""


# What a client is told (503 `state_unavailable`) when something it needs is only in Redis.
UNAVAILABLE_MESSAGE = "shared state (redis) is unavailable; try again shortly"


@frozen
class Refusal:
    """A handshake refused by shared state: the gateway answers it as any other refusal."""

    status: int
    err_type: str
    code: str
    message: str
    retry_after: int = 1


class SessionSlot(Protocol):
    """The shared slots a session holds for its life (`async with slot:` releases them)."""

    async def __aenter__(self) -> object: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class KeyBudget(KeyTokens, Protocol):
    async def refresh(self) -> None: ...


class SharedState(Protocol):
    backend: str
    instance: str

    @property
    def client_secrets(self) -> SecretStore:
        """The `kt_ek_` client secrets (`kt_trio.keys.client_secrets`): this process's, or the cluster's."""

    def running(self) -> AbstractAsyncContextManager[None]:
        """Background work (heartbeats, syncs, subscriptions) for the life of the server."""

    async def admit(
        self, ip: str, ip_limit: int | None, key: KeyInfo | None, breaker: tuple[UpstreamHealth, str] | None = None
    ) -> SessionSlot | Refusal:
        """Cluster-wide slots for one more session (after the local `Admission` said yes).
        `breaker`: the health and id of the target the session will dial first, whose permit
        may be taken in the same round trip (the dial then uses it)."""

    def key_limiter(self, name: str, messages_per_minute: int) -> MessageRateLimiter: ...

    def key_budget(self, ring: KeyRing, name: str, daily_tokens: int) -> KeyBudget: ...

    def spend_ledger(
        self, ring: KeyRing, scope: SpendScope, name: str, limit_usd: float, team: str | None
    ) -> SpendLedger:
        """A key's or team's daily USD budget, one per name shared by its sessions
        (`kt_trio.server.usd_budget`)."""

    def bind_health(self, health: UpstreamHealth, pack: str) -> None: ...

    async def announce_revoked(self, names: Iterable[str]) -> None: ...


def instance_id() -> str:
    """This process among the cluster's: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def state_for(
    config: GatewayConfig,
    *,
    hub: EventHub,
    report: Callable[[str | None, Record], None],
    registry: CollectorRegistry,
    terminate: Callable[[set[str]], None],
) -> SharedState:
    if config.state.backend == "redis":
        from kt_trio.state.redis_state import RedisState

        return RedisState(config, hub=hub, report=report, registry=registry, terminate=terminate)
    from kt_trio.state.embedded import EmbeddedState

    return EmbeddedState()
