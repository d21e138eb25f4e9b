"""A gateway key's messages per minute and daily tokens, shared through Redis in batches.

Never a Redis call per relayed message: each key keeps its local token bucket (the limiter its
sessions already use) and a local count of what it let through; every `SYNC_SECS` one pipeline
adds this instance's counts to the cluster's and reads the totals back:

- messages: `kt:mpm:<key>` is a running count of messages (all instances); whatever the others
  sent since the last sync is taken from the local bucket, which may go into debt, so the key's
  rate holds across instances to within one sync interval of traffic.
- tokens: `kt:tokens:<key>:<UTC day>` counts the day's tokens; `INCRBY` returns the new total,
  so the alert thresholds crossed by this batch are known exactly and reported once across the
  cluster. A new session reads the day's total once (`refresh`) and is refused new responses
  when it is spent, on any instance.

While Redis is away the counts stay local and are added when it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Literal

import trio

from kt_trio.governance.rate_limit import MessageRateLimiter, RateDecision, TokenBucket
from kt_trio.keys import ALERT_THRESHOLDS
from kt_trio.keys.store import utc_day
from kt_trio.records import BudgetAlert, Record
from kt_trio.state.base import StateUnavailable
from kt_trio.state.link import RedisLink

SYNC_SECS = 0.5
MPM_TTL_SECS = 120  # the running count only needs to outlive two syncs; idle keys expire
TOKENS_TTL_SECS = 2 * 86400  # a day's count outlives its day, for late readers
# A key unused this long is dropped from the sync (and its limiter rebuilt on next use).
IDLE_SECS = 600.0


class SharedBucket(TokenBucket):
    def take_remote(self, n: int) -> None:
        """Messages other instances sent: taken now, into debt of at most one burst."""
        if n > 0:
            self._tokens = max(-float(self.burst), self._tokens - n)


class SharedKeyLimiter(MessageRateLimiter):
    """The key's local limiter, counting what it lets through for the next sync."""

    __slots__ = ("name", "sent", "synced_total", "used_at")

    def __init__(self, name: str, messages_per_minute: float, mode: Literal["reject", "delay"] = "reject") -> None:
        super().__init__(messages_per_minute, mode)
        self._bucket = SharedBucket(messages_per_minute)
        self.name = name
        self.sent = 0  # let through since the last sync
        self.synced_total: int | None = None
        self.used_at = time.monotonic()

    def check(self, event_type: str | None, now: float) -> RateDecision:
        decision = super().check(event_type, now)
        if decision.action != "reject" and (event_type is None or event_type not in self.exclude_types):
            self.sent += 1
        return decision


class SharedKeyBudget:
    """`KeyTokens` for the session governor: `exhausted`, and `add` that only counts locally."""

    def __init__(self, owner: SharedKeyLimits, name: str, daily_tokens: int) -> None:
        self._owner = owner
        self.key_name = name
        self.daily_tokens = daily_tokens
        self.used = 0  # the cluster's total as last read, plus what is pending here
        self.pending = 0
        self.last_session: str | None = None
        self.exhausted = False
        self.used_at = time.monotonic()

    async def refresh(self) -> None:
        """A new session reads the day's total once (one round trip; the last known when down)."""
        self.used_at = time.monotonic()
        try:
            total = await self._owner.link.call(
                lambda: self._owner.link.client.get(self._owner.tokens_key(self.key_name))
            )
        except StateUnavailable:
            return
        self._set_total(int(total or 0))

    async def add(self, tokens: int, session_id: str) -> list[BudgetAlert]:
        self.pending += tokens
        self.used += tokens
        self.last_session = session_id
        self.used_at = time.monotonic()
        self.exhausted = self.used >= self.daily_tokens
        return []  # alerts come from the sync, once across the cluster

    def _set_total(self, total: int) -> None:
        self.used = total + self.pending
        self.exhausted = self.used >= self.daily_tokens


class SharedKeyLimits:
    def __init__(self, link: RedisLink, report: Callable[[str | None, Record], None]) -> None:
        self.link = link
        self._report = report
        # Bounded by the keys in use (idle ones are dropped by the sync).
        self.limiters: dict[str, SharedKeyLimiter] = {}
        self.budgets: dict[str, SharedKeyBudget] = {}

    @staticmethod
    def tokens_key(name: str, now: float | None = None) -> str:
        return f"kt:tokens:{name}:{utc_day(time.time() if now is None else now)}"

    def limiter(self, name: str, messages_per_minute: int) -> SharedKeyLimiter:
        shared = self.limiters.get(name)
        if shared is None or shared.bucket.rate_per_sec * 60 != messages_per_minute:
            shared = self.limiters[name] = SharedKeyLimiter(name, messages_per_minute)
        shared.used_at = time.monotonic()
        return shared

    def budget(self, name: str, daily_tokens: int) -> SharedKeyBudget:
        budget = self.budgets.get(name)
        if budget is None or budget.daily_tokens != daily_tokens:
            budget = self.budgets[name] = SharedKeyBudget(self, name, daily_tokens)
        return budget

    async def run(self) -> None:
        while True:
            await trio.sleep(SYNC_SECS)
            self._forget_idle()
            if self.link.available:
                await self.sync()

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - IDLE_SECS
        for table in (self.limiters, self.budgets):
            for name in [n for n, v in table.items() if v.used_at < cutoff and not getattr(v, "pending", 0)]:
                del table[name]

    async def sync(self) -> None:
        """One pipeline: every key's new messages and tokens in, the totals out."""
        limiters = [lim for lim in self.limiters.values() if lim.sent or lim.synced_total is not None]
        budgets = list(self.budgets.values())
        if not limiters and not budgets:
            return
        sent = [lim.sent for lim in limiters]
        pending = [b.pending for b in budgets]
        day_keys = [self.tokens_key(b.key_name) for b in budgets]

        increments = [(f"kt:mpm:{lim.name}", n, MPM_TTL_SECS) for lim, n in zip(limiters, sent, strict=True)]
        increments += [(key, n, TOKENS_TTL_SECS) for key, n in zip(day_keys, pending, strict=True)]
        try:
            totals = await self.link.add_to_counters(increments)
        except StateUnavailable:
            return
        for i, lim in enumerate(limiters):
            total = totals[i]
            lim.sent -= sent[i]
            previous, lim.synced_total = lim.synced_total, total
            if previous is not None and total >= previous:
                others = total - previous - sent[i]
                bucket = lim.bucket
                assert isinstance(bucket, SharedBucket)
                bucket.take_remote(others)
        for i, budget in enumerate(budgets):
            total = totals[len(limiters) + i]
            budget.pending -= pending[i]
            budget._set_total(total)
            for alert in crossed(budget, total - pending[i], total):
                self._report(alert.session_id, alert)


def crossed(
    budget: SharedKeyBudget, before: int, after: int, thresholds: Iterable[float] = ALERT_THRESHOLDS
) -> list[BudgetAlert]:
    """Alerts for the thresholds this batch moved the day's total across (each once per day)."""
    limit = budget.daily_tokens
    sid = budget.last_session or ""
    return [BudgetAlert(sid, t, after, limit, exceeded=t >= 1.0) for t in thresholds if before < t * limit <= after]
