"""`state.backend: embedded`: everything in this process, as one gateway has always kept it.

The local `Admission` already holds the per-IP and per-key slots, so there is nothing more to
take; per-key limiters and budgets are one object per key (or team) shared by its sessions (the daily
token count and USD spend themselves live in the key store, `keys.db`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType

from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.keys import KeyInfo, KeyRing
from kt_trio.keys.client_secrets import ClientSecrets
from kt_trio.records import SpendScope
from kt_trio.server.key_budget import KeyTokenBudget
from kt_trio.server.usd_budget import StoredSpend
from kt_trio.state.base import Refusal, instance_id


class NoSlot:
    """Nothing shared to hold or release."""

    async def __aenter__(self) -> NoSlot:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


NO_SLOT = NoSlot()


class EmbeddedState:
    backend = "embedded"

    def __init__(self) -> None:
        self.instance = instance_id()
        # One per key in use, shared by its sessions and chat requests.
        self._limiters: dict[str, MessageRateLimiter] = {}
        self._budgets: dict[str, KeyTokenBudget] = {}
        self._spends: dict[tuple[SpendScope, str], StoredSpend] = {}
        # `kt_ek_` client secrets live in this process (one process: nobody else to tell).
        self.client_secrets = ClientSecrets()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        yield

    async def admit(
        self, ip: str, ip_limit: int | None, key: KeyInfo | None, breaker: tuple[UpstreamHealth, str] | None = None
    ) -> NoSlot | Refusal:
        return NO_SLOT

    def key_limiter(self, name: str, messages_per_minute: int) -> MessageRateLimiter:
        shared = self._limiters.get(name)
        if shared is None or shared.bucket.rate_per_sec * 60 != messages_per_minute:
            shared = self._limiters[name] = MessageRateLimiter(messages_per_minute)
        return shared

    def key_budget(self, ring: KeyRing, name: str, daily_tokens: int) -> KeyTokenBudget:
        budget = self._budgets.get(name)
        if budget is None or budget.daily_tokens != daily_tokens:
            budget = self._budgets[name] = KeyTokenBudget(ring, name, daily_tokens)
        return budget

    def spend_ledger(
        self, ring: KeyRing, scope: SpendScope, name: str, limit_usd: float, team: str | None
    ) -> StoredSpend:
        ledger = self._spends.get((scope, name))
        if ledger is None or ledger.limit_usd != limit_usd:
            ledger = self._spends[(scope, name)] = StoredSpend(ring, scope, name, limit_usd, team)
        return ledger

    def bind_health(self, health: UpstreamHealth, pack: str) -> None:
        return None

    async def announce_revoked(self, names: Iterable[str]) -> None:
        return None
