"""How a key looks outside the store, the same in every place that shows one: the JSON row
(`kt_trio keys list --json`, `GET /admin/keys`), the table `keys list` prints (from local records
or from the admin API's rows alike), and the durations `--expires-in` / `expires_in` take. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kt_trio.keys.store import KeyRecord

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"(\d+)([smhdw])")
TABLE_COLUMNS = (
    ("NAME", "name"),
    ("PREFIX", "prefix"),
    ("PACK", "pack"),
    ("TEAM", "team"),
    ("SCOPES", "scopes"),
    ("EXPIRES", "expires_at"),
    ("LAST USED", "last_used_at"),
    ("STATE", "state"),
)


def parse_duration(text: str) -> float:
    """`90d`, `12h`, `1w2d`, `30m`, `3600s` (or bare seconds) -> seconds."""
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _DURATION_RE.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"bad duration {text!r}: use a number and a unit, e.g. 90d, 12h, 30m")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return float(seconds)


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_json(record: KeyRecord, now: float) -> dict[str, Any]:
    """Everything about a key but the key (which is not stored) and its hash."""
    return {
        "name": record.name,
        "prefix": record.prefix,
        "pack": record.pack,
        "team": record.team,
        "scopes": list(record.scopes),
        "expires_at": when(record.expires_at) if record.expires_at is not None else None,
        "max_sessions": record.max_sessions,
        "messages_per_minute": record.messages_per_minute,
        "daily_tokens": record.daily_tokens,
        "daily_usd": record.daily_usd,
        "models": list(record.models) if record.models is not None else None,
        "created_at": when(record.created_at),
        "last_used_at": when(record.last_used_at) if record.last_used_at is not None else None,
        "revoked_at": when(record.revoked_at) if record.revoked_at is not None else None,
        "state": record.state(now),
    }


def _cell(field: str, value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if value is None:
        return "never" if field in ("expires_at", "last_used_at") else "-"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]] = TABLE_COLUMNS) -> str:
    """Rows (JSON objects) as aligned columns under a header, one line each."""
    lines = [tuple(title for title, _ in columns)] + [tuple(_cell(f, row.get(f)) for _, f in columns) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )
