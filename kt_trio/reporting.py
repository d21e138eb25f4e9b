"""The one place where what sessions, HTTP exchanges and the governance layer conclude is handed on.

WebSocket sessions (`kt_trio.session`) and HTTP exchanges (`kt_trio.chat`, and every other HTTP
front) never talk to audit, the event stream, metrics or logs directly: each has one
`ReportingPoint`, which tags records (`kt_trio.records`) with its session id and

- hands each at once to the gateway's `Reporter`, which fans it out to the sinks the gateway
  registered (event stream, metrics, logs). A sink must not block: it takes the record and
  returns (a sink that needs I/O puts it on its own bounded channel and says what happens when
  that is full);
- keeps it for the audit log when the log is on, until `write_audit()`, which the owner awaits
  before the next bytes leave (so nothing is forwarded unaudited; with `durability: strict` it
  waits for the commit).

Usage records are attributed to the gateway key's name (never the key) and team here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from kt_trio.config.schema import AuditLoggerSettings
from kt_trio.pricing import Pricing
from kt_trio.records import BudgetAlert, Record, ResponseTiming, ResponseUsage, SessionSummary

log = logging.getLogger("kt_trio.reporting")

Sink = Callable[[str | None, Record], None]
Report = Callable[[str | None, Record], None]


class AuditSink(Protocol):
    """What a session or an exchange needs of the audit log (`kt_trio.audit`)."""

    settings: AuditLoggerSettings

    async def write_many(self, session_id: str | None, records: Sequence[Record]) -> None: ...


class KeyTokens(Protocol):
    """A gateway key's daily token budget, shared by its sessions (`kt_trio.server.key_budget`)."""

    exhausted: bool

    async def add(self, tokens: int, session_id: str) -> list[BudgetAlert]: ...


class SpendCharge(Protocol):
    """What a `ReportingPoint` charges each priced response to (the daily USD budgets)."""

    def charge(self, usd: float) -> None: ...


class Reporter:
    """The gateway's fan-out of records to its sinks."""

    def __init__(self) -> None:
        self._sinks: list[Sink] = []

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def emit(self, session_id: str | None, record: Record) -> None:
        for sink in self._sinks:
            try:
                sink(session_id, record)
            except Exception:  # a broken sink must not take a session down with it
                log.exception("reporting sink %r failed on %s", sink, type(record).__name__)


class ReportingPoint:
    """One session's or one HTTP exchange's records: to the reporter at once, to the audit log
    at the owner's `write_audit()`."""

    __slots__ = ("_audit", "_cost", "_pending", "_pricing", "_report", "key_name", "session_id", "spend", "team")

    def __init__(
        self,
        session_id: str,
        report: Report | None,
        audit: AuditSink | None,
        *,
        key_name: str | None = None,
        team: str | None = None,
        pricing: Pricing | None = None,
        spend: SpendCharge | None = None,
    ) -> None:
        """`pricing`: each usage record gets its cost here, and the session's end record the
        sum of them (DESIGN.md "Observability and cost"). `spend`: the daily USD budgets the
        costs are charged to (`kt_trio.server.usd_budget.SpendMeter`), priced only here."""
        self.session_id = session_id
        self.spend = spend
        self._pricing = pricing
        self._cost: float | None = None  # USD of the priced responses so far
        self._report = report
        self._audit = audit
        self.key_name = key_name
        self.team = team
        # Records emitted since the last hand-off to the audit log: at most what one batch of
        # frames (a session) or one request (an exchange) produces, so bounded by the read size.
        self._pending: list[Record] = []

    @property
    def audit_settings(self) -> AuditLoggerSettings | None:
        return self._audit.settings if self._audit is not None else None

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def emit(self, record: Record) -> None:
        if isinstance(record, ResponseUsage):
            record = self._priced(record)
        elif isinstance(record, SessionSummary) and self._cost is not None and record.cost_usd is None:
            record = attrs.evolve(record, cost_usd=round(self._cost, 10))
        if self._report is not None:
            self._report(self.session_id, record)
        if self._audit is not None and type(record) is not ResponseTiming:  # telemetry, not a fact to keep
            self._pending.append(record)

    def _priced(self, record: ResponseUsage) -> ResponseUsage:
        changes: dict[str, Any] = {}
        if self.key_name is not None and record.key_name is None:
            # Usage is attributed to the key and team where it is reported (issue 7).
            changes.update(key_name=self.key_name, team=self.team)
        if self._pricing is not None and record.cost_usd is None:
            cost = self._pricing.cost(record.model, record.usage)
            if cost is not None:
                changes["cost_usd"] = cost
                self._cost = (self._cost or 0.0) + cost
                if self.spend is not None:
                    self.spend.charge(cost)
        return attrs.evolve(record, **changes) if changes else record

    async def write_audit(self) -> None:
        """Hands the pending records to the audit log; waits when its queue is full, and in
        `strict` durability until they are committed."""
        if self._pending and self._audit is not None:
            pending, self._pending = self._pending, []
            await self._audit.write_many(self.session_id, pending)
