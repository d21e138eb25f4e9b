"""Daily USD budgets of gateway keys (`keys create --daily-usd X`) and teams
(`teams.<team>.daily_usd`) at run time: DESIGN.md "Observability and cost".

They act like the key's daily token budget (`kt_trio.server.key_budget`): a session or an HTTP
request reads the day's spend once when it starts (`key_spend`); every response's cost (its usage
at the gateway's price table, priced once by the session's or request's `ReportingPoint`) is
added to every budget that applies (the key's and its team's) in one batch per relayed batch of
messages or per request; alerts at `ALERT_THRESHOLDS` are reported once per day; once a budget is
spent, new work is refused with `budget_exceeded` (a WebSocket `response.create` gets an error
event, an HTTP request a 429), until the UTC day ends. A model without a price costs nothing
(reported once by `kt_trio.pricing`).

Where the day's spend lives is the state backend's choice (`SharedState.spend_ledger`): with
`embedded`, in the key database (`kt_trio.keys.spend`: SQLite shared by `--workers`, or
PostgreSQL); with `redis`, in Redis, added in batches (`kt_trio.state.usd_spend`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from kt_trio.governance.spend import SpendLedger, SpendMeter
from kt_trio.keys import KeyInfo, KeyRing
from kt_trio.records import SpendAlert, SpendScope

if TYPE_CHECKING:
    from kt_trio.config.schema import Team
    from kt_trio.state.base import SharedState


class StoredSpend:
    """`embedded` state: the day's spend in the key database (shared by `--workers` through it)."""

    __slots__ = ("_ring", "exhausted", "limit_usd", "name", "scope", "team")

    def __init__(self, ring: KeyRing, scope: SpendScope, name: str, limit_usd: float, team: str | None) -> None:
        self._ring = ring
        self.scope: SpendScope = scope
        self.name = name
        self.limit_usd = limit_usd
        self.team = team
        self.exhausted = False

    async def refresh(self) -> None:
        self.exhausted = (await self._ring.daily_spend(self.scope, self.name, self.limit_usd)).exceeded

    async def add(self, usd: float, session_id: str) -> list[SpendAlert]:
        state = await self._ring.record_spend(self.scope, self.name, usd, self.limit_usd)
        self.exhausted = state.exceeded
        return [
            SpendAlert(session_id, t, state.used_usd, self.limit_usd, t >= 1.0, self.scope, self.name, self.team)
            for t in state.crossed
        ]


async def key_spend(
    teams: Mapping[str, Team], state: SharedState, ring: KeyRing | None, key: KeyInfo | None
) -> SpendMeter | None:
    """The USD budgets a new session or request of `key` is charged to, read fresh; None when
    neither the key nor its team has one (nothing is counted then)."""
    if key is None or ring is None:
        return None
    ledgers: list[SpendLedger] = []
    if key.daily_usd:
        ledgers.append(state.spend_ledger(ring, "key", key.name, key.daily_usd, key.team))
    team = teams.get(key.team) if key.team is not None else None
    if team is not None and team.daily_usd and key.team is not None:
        ledgers.append(state.spend_ledger(ring, "team", key.team, team.daily_usd, key.team))
    if not ledgers:
        return None
    for ledger in ledgers:
        await ledger.refresh()
    return SpendMeter(ledgers)
