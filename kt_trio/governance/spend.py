"""A session's or an HTTP request's daily USD budgets (its key's and its team's): what is charged,
what is spent, and how a refusal is worded. Pure: the ledgers behind it do the I/O
(`kt_trio.server.usd_budget`, `kt_trio.state.usd_spend`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kt_trio.records import SpendAlert, SpendScope


class SpendLedger(Protocol):
    """One key's or team's spend today, shared by all of its sessions and requests."""

    scope: SpendScope
    name: str
    limit_usd: float
    exhausted: bool

    async def refresh(self) -> None:
        """Reads the day's spend (a new session or request; maybe a new day, or a restart)."""

    async def add(self, usd: float, session_id: str) -> list[SpendAlert]:
        """Adds one batch of spend; the alerts it crossed (or none, when they come later)."""


def refusal_words(ledger: SpendLedger) -> tuple[str, str]:
    """(whose budget, until when) for the `budget_exceeded` message."""
    if ledger.scope == "key":
        return "Daily USD budget of this key", "with this key today"
    return f"Daily USD budget of team {ledger.name!r}", "for this team today"


def refusal_message(ledger: SpendLedger) -> str:
    whose, until = refusal_words(ledger)
    return f"{whose} exceeded; no new responses can be created {until}."


class SpendMeter:
    """One session's or one HTTP request's USD budgets: its key's and its key's team's.

    `charge` is called by the `ReportingPoint` with each priced response's cost; `settle` adds
    what was charged since the last call to every ledger (the session calls it once per batch of
    relayed messages, as for the token budget; a request once, when it ends)."""

    __slots__ = ("ledgers", "pending")

    def __init__(self, ledgers: Sequence[SpendLedger]) -> None:
        self.ledgers = tuple(ledgers)
        self.pending = 0.0  # USD priced but not yet added to the ledgers

    def charge(self, usd: float) -> None:
        self.pending += usd

    @property
    def exhausted(self) -> SpendLedger | None:
        """The first budget that is spent (new work is refused), or None."""
        for ledger in self.ledgers:
            if ledger.exhausted:
                return ledger
        return None

    async def settle(self, session_id: str) -> list[SpendAlert]:
        usd, self.pending = self.pending, 0.0
        alerts: list[SpendAlert] = []
        if usd > 0:
            for ledger in self.ledgers:
                alerts += await ledger.add(usd, session_id)
        return alerts
