"""Reading the audit database: verify the chain, tail it, export a time range.

Readers open their own read-only connections (WAL lets them read while the gateway writes) and
never touch the writer's. Plain synchronous code: the CLI is its only caller.

What `verify` finds, with the first bad record named (walking in seq order):
- a modified row: its content no longer matches its hash;
- a deleted row: a gap in `seq` (or, when the rows after it were renumbered, a broken link);
- a deleted prefix: the first row neither starts the chain (seq 1, genesis hash) nor continues
  the latest retention checkpoint;
- reordered rows: a row whose `prev_hash` is not its predecessor's hash (`seq` is hashed, so a
  moved row also fails its own hash); two adjacent swapped rows are named as such;
- an inserted row: the row after it links to the row before it.
What it cannot find on its own: a consistent rewrite. The chain has no secret, so someone who can
write the file can recompute every hash from the edit onward, or cut records off the end. Anchor
the head externally against that: `verify` prints the head's seq and hash, and
`verify --anchor SEQ:HASH` checks that a head seen earlier is still there, unchanged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from attrs import frozen

from kt_trio.audit.store import CHECKPOINT_KIND, GENESIS_HASH, format_ts, row_hash

_COLUMNS = "seq, ts, kind, session_id, data, prev_hash, hash"


@frozen
class Row:
    seq: int
    ts: str
    kind: str
    session_id: str | None
    data: str  # canonical JSON text, as stored
    prev_hash: str
    hash: str
    chain: str | None = None  # the writer's chain in PostgreSQL; SQLite has one, unnamed

    def as_dict(self) -> dict[str, Any]:
        named = {"chain": self.chain} if self.chain is not None else {}
        return {
            **named,
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "session_id": self.session_id,
            "data": json.loads(self.data),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@frozen
class VerifyResult:
    count: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    bad_seq: int | None = None  # the first bad record
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection; raises FileNotFoundError when there is no database."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audit log at {path}")
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Iterator[Row]:
    for seq, ts, kind, session_id, data, prev_hash, digest in conn.execute(sql, params):
        yield Row(int(seq), str(ts), str(kind), session_id, str(data), str(prev_hash), str(digest))


def verify(path: str | Path, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the whole chain in seq order; stop at the first bad record."""
    conn = connect_readonly(path)
    try:
        conn.execute("BEGIN")  # one snapshot for both queries, while the writer goes on
        return _verify(conn, anchor)
    finally:
        conn.close()


def _verify(conn: sqlite3.Connection, anchor: tuple[int, str] | None) -> VerifyResult:
    checkpoint = conn.execute(
        "SELECT seq, data FROM audit_records WHERE kind = ? ORDER BY seq DESC LIMIT 1", (CHECKPOINT_KIND,)
    ).fetchone()
    rows = _rows(conn, f"SELECT {_COLUMNS} FROM audit_records ORDER BY seq")
    return verify_rows(rows, checkpoint, anchor)


def verify_rows(
    rows: Iterator[Row],
    checkpoint: tuple[int, str] | None,
    anchor: tuple[int, str] | None,
    genesis: str = GENESIS_HASH,
) -> VerifyResult:
    """Walk one chain's rows (in seq order); `checkpoint` is the latest retention checkpoint's
    `(seq, data)`, `genesis` the first record's `prev_hash` when nothing was removed."""
    start_seq, start_hash, start_note = 1, genesis, "the chain's start"
    if checkpoint is not None:
        try:
            claim = json.loads(checkpoint[1])
            start_seq = int(claim["removed_through_seq"]) + 1
            start_hash = str(claim["last_removed_hash"])
        except (ValueError, KeyError, TypeError):
            return VerifyResult(
                0, None, None, None, int(checkpoint[0]), "retention checkpoint is unreadable (modified)"
            )
        start_note = f"retention checkpoint {checkpoint[0]} (removed through {start_seq - 1})"

    count = 0
    first: Row | None = None
    prev: Row | None = None
    before_prev: Row | None = None
    anchor_found = False
    row = next(rows, None)
    while row is not None:
        following = next(rows, None)
        count += 1
        problem = _link_problem(row, prev, before_prev, following, start_seq, start_hash, start_note)
        if problem is None:
            problem = _content_problem(row)
        if problem is not None:
            bad_seq, what = problem
            return VerifyResult(count, first.seq if first else row.seq, row.seq, None, bad_seq, what)
        if anchor is not None and row.seq == anchor[0]:
            anchor_found = True
            if row.hash != anchor[1]:
                what = f"record {row.seq}: hash {row.hash} differs from the anchor {anchor[1]} (the log was rewritten)"
                return VerifyResult(count, first.seq if first else row.seq, row.seq, None, row.seq, what)
        first = first or row
        before_prev, prev, row = prev, row, following

    last_seq = prev.seq if prev else None
    if anchor is not None and not anchor_found:
        anchor_seq, anchor_hash = anchor
        if last_seq is None or anchor_seq > last_seq:
            what = f"the anchor record {anchor_seq} is missing: the log ends at {last_seq} (truncated or rewritten)"
            return VerifyResult(count, first.seq if first else None, last_seq, None, anchor_seq, what)
        if anchor_seq == start_seq - 1 and anchor_hash != start_hash:
            what = f"record {anchor_seq} (removed by retention) had hash {start_hash}, not the anchor's {anchor_hash}"
            return VerifyResult(count, first.seq if first else None, last_seq, None, anchor_seq, what)
    return VerifyResult(count, first.seq if first else None, last_seq, prev.hash if prev else None)


def _link_problem(
    row: Row,
    prev: Row | None,
    before_prev: Row | None,
    following: Row | None,
    start_seq: int,
    start_hash: str,
    start_note: str,
) -> tuple[int, str] | None:
    """Does `row` continue the chain? Returns (first bad seq, what is wrong) or None."""
    if prev is None:
        if row.seq > start_seq:
            return (
                row.seq,
                f"{_missing(start_seq, row.seq - 1)} missing (deleted); the log should start at {start_note}",
            )
        if row.seq < start_seq:
            return row.seq, f"record {row.seq} is still present although {start_note} says it was removed"
        if row.prev_hash != start_hash:
            if following is not None and following.prev_hash == start_hash and row.prev_hash == following.hash:
                return row.seq, f"records {row.seq} and {following.seq} are swapped (reordered)"
            return row.seq, f"record {row.seq}: prev_hash does not match {start_note} (modified or inserted)"
        return None
    if row.seq != prev.seq + 1:
        return row.seq, f"{_missing(prev.seq + 1, row.seq - 1)} missing (deleted) before record {row.seq}"
    if row.prev_hash == prev.hash:
        return None
    if before_prev is not None and row.prev_hash == before_prev.hash:
        return prev.seq, f"record {prev.seq} was inserted: record {row.seq} links to record {before_prev.seq}"
    if following is not None and following.prev_hash == prev.hash and row.prev_hash == following.hash:
        return row.seq, f"records {row.seq} and {following.seq} are swapped (reordered)"
    return row.seq, (
        f"record {row.seq}: prev_hash does not match record {prev.seq}'s hash "
        f"(a record was removed, inserted or moved here, or record {prev.seq} was modified and re-hashed)"
    )


def _missing(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first}..{last} are"


def _content_problem(row: Row) -> tuple[int, str] | None:
    try:
        data = json.loads(row.data)
    except ValueError:
        return row.seq, f"record {row.seq}: data is not valid JSON (modified)"
    if row_hash(row.prev_hash, row.seq, row.ts, row.kind, row.session_id, data) != row.hash:
        return row.seq, f"record {row.seq}: content does not match its hash (modified)"
    return None


# --- one interface over both stores, for the CLI ----------------------------------------------

ChainResult = tuple[str | None, VerifyResult]  # (chain name, or None for SQLite's one chain; result)
Heads = dict[str | None, int]  # chain -> the last seq seen


class AuditSource(Protocol):
    """What `audit verify|tail|export` read: `SqliteSource` or `PostgresSource`."""

    def verify(self, anchors: Mapping[str | None, tuple[int, str]]) -> list[ChainResult]: ...

    def last_rows(self, n: int, session_id: str | None) -> list[Row]: ...

    def heads(self) -> Heads: ...

    def rows_after(self, heads: Heads, session_id: str | None) -> list[Row]: ...

    def export(self, since: str | None, until: str | None) -> Iterator[Row]: ...

    def close(self) -> None: ...


class SqliteSource:
    """`<state_dir>/audit.db` through one read-only connection."""

    def __init__(self, path: str | Path) -> None:
        self.conn = connect_readonly(path)

    def verify(self, anchors: Mapping[str | None, tuple[int, str]]) -> list[ChainResult]:
        self.conn.execute("BEGIN")  # one snapshot for both queries, while the writer goes on
        try:
            return [(None, _verify(self.conn, anchors.get(None)))]
        finally:
            self.conn.execute("COMMIT")

    def last_rows(self, n: int, session_id: str | None) -> list[Row]:
        return last_rows(self.conn, n, session_id)

    def heads(self) -> Heads:
        return {None: head_seq(self.conn)}

    def rows_after(self, heads: Heads, session_id: str | None) -> list[Row]:
        rows = rows_after(self.conn, heads.get(None, 0), session_id)
        if rows:
            heads[None] = rows[-1].seq
        return rows

    def export(self, since: str | None, until: str | None) -> Iterator[Row]:
        self.conn.execute("BEGIN")  # one snapshot: the export is a consistent slice of the chain
        yield from rows_between(self.conn, since, until)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# --- tail and export --------------------------------------------------------------------------


def last_rows(conn: sqlite3.Connection, n: int, session_id: str | None = None) -> list[Row]:
    """The last `n` records (of one session, if given), oldest first."""
    where, params = ("WHERE session_id = ?", (session_id,)) if session_id is not None else ("", ())
    sql = f"SELECT {_COLUMNS} FROM audit_records {where} ORDER BY seq DESC LIMIT ?"
    return list(reversed(list(_rows(conn, sql, (*params, n)))))


def rows_after(conn: sqlite3.Connection, seq: int, session_id: str | None = None, limit: int = 1000) -> list[Row]:
    """Records after `seq` (of one session, if given), at most `limit`, oldest first."""
    where, params = ("AND session_id = ?", (session_id,)) if session_id is not None else ("", ())
    sql = f"SELECT {_COLUMNS} FROM audit_records WHERE seq > ? {where} ORDER BY seq LIMIT ?"
    return list(_rows(conn, sql, (seq, *params, limit)))


def head_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_records").fetchone()[0])


def rows_between(conn: sqlite3.Connection, since: str | None, until: str | None) -> Iterator[Row]:
    """Records with `since <= ts < until` (RFC 3339 text from `format_ts`; None: unbounded)."""
    sql = f"SELECT {_COLUMNS} FROM audit_records WHERE ts >= ? AND ts < ? ORDER BY seq"
    return _rows(conn, sql, (since or "", until or "\uffff"))


def parse_time(text: str, *, end_of_day: bool = False) -> str:
    """An ISO 8601 date or date-time as the store's timestamp text. A time without a zone is UTC.
    A bare date is that day's midnight, or with `end_of_day` the next midnight, so that
    `--since 2026-11-01 --until 2026-11-01` is the whole of that day."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date or time: {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end_of_day else 0)
    return format_ts(moment.timestamp())
