"""Daily spend in US dollars of a gateway key (`keys create --daily-usd`) or a team
(`teams.<team>.daily_usd`), per UTC day, kept in the key database beside the token counts.

One row per (scope, name, day) of `daily_spend` (its SQLite schema is in `kt_trio.keys.store`):
`scope` is `key` or `team`. Adding to it is one short write transaction that also says which
alert thresholds this addition crossed; `alerted_upto` remembers the highest one reported, so
each threshold is reported once per day even across restarts and gateway processes
(`--workers`, or several instances on one PostgreSQL), as the daily token count does
(`KeyStore.record_tokens`).

The limit is passed in rather than read here: a team's limit lives in the gateway's config, not
in the database, and a key's is on the `KeyInfo` the caller already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from attrs import frozen

from kt_trio.keys.store import ALERT_THRESHOLDS, utc_day
from kt_trio.records import SpendScope

if TYPE_CHECKING:
    from kt_trio.keys.store import KeyDb

# The PostgreSQL migration (`kt_trio.keys.postgres.MIGRATIONS`): the key's limit and the table.
POSTGRES_MIGRATION = """
ALTER TABLE gateway_keys ADD COLUMN daily_usd double precision;
CREATE TABLE daily_spend (
    scope        text NOT NULL,
    name         text NOT NULL,
    day          text NOT NULL,
    usd          double precision NOT NULL DEFAULT 0,
    alerted_upto double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, name, day)
);
"""

# The same hair of tolerance as the token budgets: a threshold fires at its exact amount even
# when the product rounds up in binary floating point.
EPSILON_USD = 1e-9


@frozen
class SpendState:
    """A key's or a team's spend on one UTC day. `crossed`: alert thresholds newly crossed by
    this call (each reported once per day)."""

    scope: SpendScope
    name: str
    day: str
    used_usd: float
    limit_usd: float | None
    crossed: tuple[float, ...] = ()

    @property
    def exceeded(self) -> bool:
        return self.limit_usd is not None and self.used_usd >= self.limit_usd - EPSILON_USD


def crossed_thresholds(
    before: float, after: float, limit: float, thresholds: Sequence[float] = ALERT_THRESHOLDS
) -> tuple[float, ...]:
    """The thresholds an addition moved the day's spend across (`before` < t·limit <= `after`)."""
    return tuple(t for t in sorted(set(thresholds)) if before < t * limit - EPSILON_USD <= after)


def record_spend(
    db: KeyDb,
    scope: SpendScope,
    name: str,
    usd: float,
    limit: float | None,
    now: float,
    thresholds: Sequence[float] = ALERT_THRESHOLDS,
) -> SpendState:
    """Add `usd` to the day's (UTC) spend of `name` and report the thresholds of `limit` crossed."""
    if not usd >= 0:  # also refuses NaN
        raise ValueError(f"usd must be >= 0, got {usd}")
    day = utc_day(now)
    with db.transaction():
        db.run(
            "INSERT INTO daily_spend (scope, name, day, usd) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (scope, name, day) DO UPDATE SET usd = daily_spend.usd + excluded.usd",
            (scope, name, day, usd),
        )
        used, alerted = db.one(
            "SELECT usd, alerted_upto FROM daily_spend WHERE scope = ? AND name = ? AND day = ?", (scope, name, day)
        )
        crossed: tuple[float, ...] = ()
        if limit:
            crossed = tuple(t for t in sorted(set(thresholds)) if alerted < t and used >= t * limit - EPSILON_USD)
            if crossed:
                db.run(
                    "UPDATE daily_spend SET alerted_upto = ? WHERE scope = ? AND name = ? AND day = ?",
                    (crossed[-1], scope, name, day),
                )
    return SpendState(scope, name, day, float(used), limit, crossed)


def daily_spend(db: KeyDb, scope: SpendScope, name: str, limit: float | None, now: float) -> SpendState:
    """The day's spend without adding any (a new session or request asks whether it may go on)."""
    day = utc_day(now)
    row = db.one("SELECT usd FROM daily_spend WHERE scope = ? AND name = ? AND day = ?", (scope, name, day))
    return SpendState(scope, name, day, 0.0 if row is None else float(row[0]), limit)
