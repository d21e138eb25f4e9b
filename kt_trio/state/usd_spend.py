"""Daily USD budgets of keys and teams shared through Redis in batches (`state.backend: redis`).

The same scheme as the daily tokens (`kt_trio.state.key_limits`), never a Redis call per relayed
message: each ledger counts what this instance spent since the last sync, and every `SYNC_SECS`
one pipeline adds every ledger's pending spend to `kt:usd:<scope>:<name>:<UTC day>` and reads the
totals back. Amounts are whole nano-dollars (`INCRBY` is exact where `INCRBYFLOAT` would drift;
a response's cost is rounded to 1e-10 USD, so a batch loses under a nano-dollar). `INCRBY`
returns the new total, so the alert thresholds a batch crossed are known exactly and reported
once across the cluster. A new session or request reads the day's total once (`refresh`).

While Redis is away the spend stays local and is added when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from kt_trio.keys import ALERT_THRESHOLDS
from kt_trio.keys.spend import EPSILON_USD
from kt_trio.keys.store import utc_day
from kt_trio.records import Record, SpendAlert, SpendScope
from kt_trio.state.base import StateUnavailable
from kt_trio.state.key_limits import IDLE_SECS, SYNC_SECS, TOKENS_TTL_SECS
from kt_trio.state.link import RedisLink

NANO = 1_000_000_000  # Redis counts whole nano-dollars


def to_nano(usd: float) -> int:
    return round(usd * NANO)


class SharedSpend:
    """A `SpendLedger` whose `add` only counts locally; alerts come from the sync."""

    __slots__ = (
        "_owner",
        "exhausted",
        "last_session",
        "limit_usd",
        "name",
        "pending",
        "scope",
        "team",
        "used",
        "used_at",
    )

    def __init__(self, owner: SharedSpends, scope: SpendScope, name: str, limit_usd: float, team: str | None) -> None:
        self._owner = owner
        self.scope: SpendScope = scope
        self.name = name
        self.limit_usd = limit_usd
        self.team = team
        self.used = 0  # nano-dollars: the cluster's total as last read, plus what is pending here
        self.pending = 0
        self.last_session: str | None = None
        self.exhausted = False
        self.used_at = time.monotonic()

    @property
    def redis_key(self) -> str:
        return f"kt:usd:{self.scope}:{self.name}:{utc_day(time.time())}"

    async def refresh(self) -> None:
        """One round trip for a new session or request (the last known total when Redis is down)."""
        self.used_at = time.monotonic()
        link = self._owner.link
        key = self.redis_key
        try:
            total = await link.call(lambda: link.client.get(key))
        except StateUnavailable:
            return
        self.set_total(int(total or 0))

    async def add(self, usd: float, session_id: str) -> list[SpendAlert]:
        nano = to_nano(usd)
        self.pending += nano
        self.used += nano
        self.last_session = session_id
        self.used_at = time.monotonic()
        self._check()
        return []

    def set_total(self, total: int) -> None:
        self.used = total + self.pending
        self._check()

    def _check(self) -> None:
        self.exhausted = self.used >= to_nano(self.limit_usd - EPSILON_USD)

    def crossed(self, before: int, after: int) -> list[SpendAlert]:
        """Alerts for the thresholds a batch moved the day's total across (each once per day)."""
        sid = self.last_session or ""
        limit = self.limit_usd
        return [
            SpendAlert(sid, t, after / NANO, limit, t >= 1.0, self.scope, self.name, self.team)
            for t in ALERT_THRESHOLDS
            if before < to_nano(t * limit - EPSILON_USD) <= after
        ]


class SharedSpends:
    def __init__(self, link: RedisLink, report: Callable[[str | None, Record], None]) -> None:
        self.link = link
        self._report = report
        # Bounded by the keys and teams with a budget in use (idle ones are dropped by the sync).
        self.ledgers: dict[tuple[SpendScope, str], SharedSpend] = {}

    def ledger(self, scope: SpendScope, name: str, limit_usd: float, team: str | None) -> SharedSpend:
        found = self.ledgers.get((scope, name))
        if found is None or found.limit_usd != limit_usd:
            found = self.ledgers[(scope, name)] = SharedSpend(self, scope, name, limit_usd, team)
        found.used_at = time.monotonic()
        return found

    async def run(self) -> None:
        while True:
            await trio.sleep(SYNC_SECS)
            cutoff = time.monotonic() - IDLE_SECS
            for k in [k for k, v in self.ledgers.items() if v.used_at < cutoff and not v.pending]:
                del self.ledgers[k]
            if self.link.available:
                await self.sync()

    async def sync(self) -> None:
        """One pipeline: every ledger's pending spend in, the day's totals out."""
        ledgers = list(self.ledgers.values())
        if not ledgers:
            return
        pending = [ledger.pending for ledger in ledgers]
        try:
            totals = await self.link.add_to_counters(
                [(ledger.redis_key, n, TOKENS_TTL_SECS) for ledger, n in zip(ledgers, pending, strict=True)]
            )
        except StateUnavailable:
            return
        for i, (ledger, total) in enumerate(zip(ledgers, totals, strict=True)):
            ledger.pending -= pending[i]
            ledger.set_total(total)
            for alert in ledger.crossed(total - pending[i], total):
                self._report(alert.session_id, alert)
