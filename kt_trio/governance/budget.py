"""Per-session token budget (`policy.session-budget`): alerts at thresholds, then a block or close.

Fed with each response's usage (from `UsageAccumulator`). Each alert threshold fires exactly
once per session, in ascending order, even when one large response crosses several. Once the
budget is spent the session stops asking for new work: a client `response.create` is refused
with a `budget_exceeded` error, while everything else (reading the response in flight, audio,
session updates) goes on. With `action="close"` the caller closes the session with 1008
instead (`close_required`).

Note for Realtime sessions with server VAD: the server creates responses on its own when the
user stops speaking, without a client `response.create`, so `block` cannot stop those; use
`close` where the budget must be a hard stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from kt_trio.records import BudgetAlert, TokenUsage

BudgetAction = Literal["block", "close"]

BLOCKED_EVENT_TYPES = frozenset({"response.create"})
"""Client events that start new billed work, refused once the budget is spent."""


def tokens_of(usage: TokenUsage) -> int:
    """The tokens a usage record counts against the budget: its total, or input + output when a
    provider left the total out. A duration-billed transcription counts zero tokens."""
    return usage.total_tokens or usage.input_tokens + usage.output_tokens


class SessionBudget:
    """One session's budget. `exceeded` means the whole budget is used (used >= max)."""

    __slots__ = ("_next", "action", "alert_thresholds", "max_total_tokens", "used_tokens")

    def __init__(
        self,
        max_total_tokens: int,
        alert_thresholds: Iterable[float] = (0.5, 0.8, 1.0),
        action: BudgetAction = "block",
    ) -> None:
        if max_total_tokens <= 0:
            raise ValueError(f"max_total_tokens must be > 0, got {max_total_tokens!r}")
        if action not in ("block", "close"):
            raise ValueError(f"action must be 'block' or 'close', got {action!r}")
        thresholds = sorted(set(alert_thresholds))
        if any(t <= 0 for t in thresholds):
            raise ValueError(f"alert_thresholds must be > 0, got {thresholds!r}")
        self.max_total_tokens = max_total_tokens
        self.alert_thresholds: tuple[float, ...] = tuple(thresholds)
        self.action: BudgetAction = action
        self.used_tokens = 0
        self._next = 0  # index of the first threshold not yet fired: each fires once

    @property
    def exceeded(self) -> bool:
        return self.used_tokens >= self.max_total_tokens

    @property
    def close_required(self) -> bool:
        """The session must be closed with 1008 (budget spent and `action: close`)."""
        return self.action == "close" and self.exceeded

    def add(self, usage: TokenUsage, session_id: str) -> list[BudgetAlert]:
        """Count one response's usage; the alerts for thresholds crossed now (often none)."""
        self.used_tokens += tokens_of(usage)
        alerts: list[BudgetAlert] = []
        while self._next < len(self.alert_thresholds):
            threshold = self.alert_thresholds[self._next]
            # A hair of tolerance so a threshold fires at its exact token count even when the
            # product rounds up in binary floating point (0.07 * 100 == 7.000000000000001).
            if self.used_tokens < threshold * self.max_total_tokens - 1e-9:
                break
            alerts.append(BudgetAlert(session_id, threshold, self.used_tokens, self.max_total_tokens, self.exceeded))
            self._next += 1
        return alerts

    def check_client_event(self, event_type: str | None) -> bool:
        """True to forward this client event, False to refuse it (the session or front door turns
        that into its provider's error, e.g. `protocol.errors.budget_exceeded_error_event`)."""
        return not (self.exceeded and event_type in BLOCKED_EVENT_TYPES)
