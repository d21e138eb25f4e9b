"""The audit database: SQLite schema, canonical JSON, the hash chain and retention.

Everything here is synchronous and does file I/O; the writer (`kt_trio.audit.writer`) runs it on
its one thread, and the CLI's readers (`kt_trio.audit.reader`) open their own connections.

The chain. Every row is `(seq, ts, kind, session_id, data, prev_hash, hash)` where

    hash = SHA-256(prev_hash + canonical_json({"seq", "ts", "kind", "session_id", "data"}))

as lowercase hex, and `prev_hash` is the previous row's `hash` (`GENESIS_HASH` for seq 1). `seq`
is part of the hashed content, so a row moved to another position no longer matches its hash, and
`seq` values are contiguous, so a removed row leaves a gap. Canonical JSON is Python's json with
sorted keys, no whitespace, UTF-8 text and no NaN/Infinity: the same value always gives the same
bytes, which is all the chain needs (the only reader is our own `verify`).

Retention removes a prefix of the chain (never a row in the middle) and, in the same transaction,
appends a `checkpoint` row naming the last removed seq and its hash: the first surviving row's
`prev_hash` must equal that hash, so what is left still verifies.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from kt_trio.records import (
    AdminAction,
    BreakerTransition,
    BudgetAlert,
    MessageSeen,
    PolicyDecision,
    Record,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
    SpendAlert,
)

if TYPE_CHECKING:
    from kt_trio.config.schema import AuditLoggerSettings, Store

DB_NAME = "audit.db"
SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64
CHECKPOINT_KIND = "checkpoint"

# The `kind` column: one name per record class (stable: these names are in every stored row's hash).
KINDS: dict[type, str] = {
    SessionStarted: "session_start",
    MessageSeen: "message",
    PolicyDecision: "decision",
    SessionSummary: "session_end",
    ResponseUsage: "usage",
    BudgetAlert: "budget",
    SpendAlert: "budget",  # a USD budget's alert: the same kind, its own fields
    BreakerTransition: "breaker",
    AdminAction: "admin",
}

# The database refuses UPDATE always, and DELETE except of the prefix a retention transaction
# granted itself. Retention bypasses the trigger with a grant row (`audit_retention_grant`) that it
# inserts and deletes inside its own transaction, rather than dropping and recreating the trigger:
# - the grant is never committed, so no other connection ever sees a database without protection
#   (WAL readers see the state before or after the transaction), and a crash rolls it back;
# - the trigger stays in force during retention and still refuses any row past the granted seq, so
#   even a retention bug cannot punch a hole in the middle of the chain;
# - no schema change, so other connections' prepared statements are not invalidated.
# Triggers are a guard against accidents and casual edits, not a security boundary: anyone who can
# write the file can drop them. That is what the hash chain and `verify` are for.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_records (
    seq        INTEGER PRIMARY KEY,   -- contiguous, assigned by the writer, part of the hash
    ts         TEXT NOT NULL,         -- RFC 3339 UTC with microseconds: sorts as text
    kind       TEXT NOT NULL,
    session_id TEXT,
    data       TEXT NOT NULL,         -- canonical JSON of the record
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_ts ON audit_records (ts);
CREATE INDEX IF NOT EXISTS audit_records_session ON audit_records (session_id, seq);
CREATE TABLE IF NOT EXISTS audit_retention_grant (
    through_seq INTEGER NOT NULL
);
"""

_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are immutable: UPDATE refused');
END;
CREATE TRIGGER IF NOT EXISTS audit_records_no_delete BEFORE DELETE ON audit_records
WHEN OLD.seq > (SELECT COALESCE(MAX(through_seq), 0) FROM audit_retention_grant)
BEGIN
    SELECT RAISE(ABORT, 'audit records are immutable: DELETE refused (only retention removes records)');
END;
"""

_DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS audit_records_no_update;
DROP TRIGGER IF EXISTS audit_records_no_delete;
"""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def row_hash(prev_hash: str, seq: int, ts: str, kind: str, session_id: str | None, data: Any) -> str:
    """The chain hash of one row; `data` is the decoded record (a dict)."""
    return row_hash_of_json(prev_hash, seq, ts, kind, session_id, canonical_json(data))


# json's own string encoder (C), as `canonical_json` uses it with ensure_ascii=False.
_json_str = json.encoder.encode_basestring


def row_hash_of_json(prev_hash: str, seq: int, ts: str, kind: str, session_id: str | None, data_json: str) -> str:
    """`row_hash` from the row's data already in canonical JSON (the writer has it for the
    `data` column): the hashed content is assembled around it, byte for byte what
    `canonical_json` gives for the whole row (keys sorted: data, kind, seq, session_id, ts),
    instead of serialising the record a second time."""
    sid = "null" if session_id is None else _json_str(session_id)
    content = f'{{"data":{data_json},"kind":{_json_str(kind)},"seq":{seq:d},"session_id":{sid},"ts":{_json_str(ts)}}}'
    return hashlib.sha256((prev_hash + content).encode()).hexdigest()


_ts_second = -1
_ts_prefix = ""


def format_ts(epoch: float) -> str:
    """Fixed-width RFC 3339 UTC, so text order is time order (retention and export compare text)."""
    global _ts_second, _ts_prefix
    second = int(epoch)
    if second != _ts_second:  # one strftime a second, not one a record (~3 µs each)
        _ts_prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _ts_second = second
    micros = round((epoch - second) * 1e6)
    if micros >= 1_000_000:  # rounding reached the next second: let that second's prefix say so
        return format_ts(float(second + 1))
    return f"{_ts_prefix}.{micros:06d}Z"


def record_data(record: Record, *, include_content: bool) -> tuple[str, dict[str, Any]]:
    """A record as (kind, dict). Records hold no secrets (a key's name, never the key); message
    content is dropped here unless `include_content`, whatever the producer put on the record."""
    kind = KINDS.get(type(record))
    if kind is None:
        raise TypeError(f"not an audit record: {type(record).__name__}")
    data = attrs.asdict(record)
    if kind == "message" and not include_content:
        data["content"] = None
    return kind, data


def db_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / DB_NAME


AuditRow = tuple[str, str, str | None, dict[str, Any]]  # (ts, kind, session_id, data)


def audit_rows(entries: Sequence[tuple[str, str | None, Record]], *, include_content: bool) -> list[AuditRow]:
    """The writer's `(ts, session_id, record)` entries as rows; a record's own session id is used
    when the entry has none."""
    rows = []
    for ts, session_id, record in entries:
        kind, data = record_data(record, include_content=include_content)
        if session_id is None:
            session_id = data.get("session_id")
        rows.append((ts, kind, session_id, data))
    return rows


def chain_rows(
    rows: Iterable[AuditRow], head: tuple[int, str]
) -> tuple[list[tuple[int, str, str, str | None, str, str, str]], tuple[int, str]]:
    """Number and hash `rows` onto the chain whose head is `(seq, hash)`: the insert parameters
    `(seq, ts, kind, session_id, data_json, prev_hash, hash)` and the new head."""
    seq, prev = head
    params = []
    for ts, kind, session_id, data in rows:
        seq += 1
        data_json = canonical_json(data)
        digest = row_hash_of_json(prev, seq, ts, kind, session_id, data_json)
        params.append((seq, ts, kind, session_id, data_json, prev, digest))
        prev = digest
    return params, (seq, prev)


def chain_genesis(chain: str) -> str:
    """The `prev_hash` of a named chain's first record (the PostgreSQL store's chains): the name
    is hashed into it, so a chain renamed (its rows moved under another name) no longer verifies."""
    return hashlib.sha256(f"kt_trio audit chain:{chain}".encode()).hexdigest()


class AuditBackend(Protocol):
    """What the writer needs of a store (SQLite `AuditStore`, or `PostgresAuditStore`). Every
    call is synchronous and made from the writer's one thread, one at a time."""

    def append(self, entries: Sequence[tuple[str, str | None, Record]]) -> int: ...

    def remove_expired(self, cutoff_ts: str, now_ts: str, retention_days: int | None = None) -> int: ...

    def close(self) -> None: ...


def open_store(
    state_dir: str | Path, settings: AuditLoggerSettings, store: Store | None = None, chain: str | None = None
) -> AuditBackend:
    """The store `store.backend` names: `<state_dir>/audit.db`, or the PostgreSQL database with
    this writer's chain (`chain`, the instance id). Synchronous: call it on a worker thread."""
    strict = settings.durability == "strict"
    if store is not None and store.backend == "postgres":
        from kt_trio.audit.postgres import PostgresAuditStore

        assert store.postgres_dsn is not None  # the loader requires it
        return PostgresAuditStore.open(
            store.postgres_dsn,
            chain=chain or default_chain(),
            immutable=settings.immutable,
            strict=strict,
            include_content=settings.include_content,
        )
    return AuditStore.open(
        db_path(state_dir), immutable=settings.immutable, strict=strict, include_content=settings.include_content
    )


def default_chain(port: int | None = None) -> str:
    """An instance's chain when `store.instance_id` is unset: `<hostname>:<port>`, stable across
    restarts of the same instance and different for two instances on one host."""
    host = socket.gethostname()
    return f"{host}:{port}" if port is not None else host


class AuditStore:
    """The writer's side of the database. Not thread-safe by itself: the writer serialises every
    call (one at a time, see `kt_trio.audit.writer`), and nothing else writes the database."""

    def __init__(self, conn: sqlite3.Connection, *, include_content: bool) -> None:
        self._conn = conn
        self._include_content = include_content

    @classmethod
    def open(cls, path: str | Path, *, immutable: bool, strict: bool, include_content: bool) -> AuditStore:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: trio's thread cache may run successive to_thread calls on
        # different worker threads; the writer's limiter of 1 guarantees they never overlap.
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # strict: fsync the WAL on every commit (survives power loss, not only kill -9);
            # batch: WAL without per-commit fsync survives a killed process, costs no fsync.
            conn.execute(f"PRAGMA synchronous={'FULL' if strict else 'NORMAL'}")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO audit_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            # The config is the authority: `immutable: false` removes the triggers (the chain is
            # still written, it costs one SHA-256 per record, and `verify` still works).
            conn.executescript(_TRIGGERS if immutable else _DROP_TRIGGERS)
        except BaseException:
            conn.close()
            raise
        return cls(conn, include_content=include_content)

    def close(self) -> None:
        self._conn.close()

    def _head(self) -> tuple[int, str]:
        # Read inside each transaction rather than cached: a failed commit or a second writer
        # (another process on the same state_dir) can never fork the chain.
        row = self._conn.execute("SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        # Empty table: after retention removed everything there is still a checkpoint row, so an
        # empty table really is a new chain.
        return 0, GENESIS_HASH

    def _insert(self, rows: Iterable[AuditRow], head: tuple[int, str]) -> tuple[int, str]:
        params, end = chain_rows(rows, head)
        self._conn.executemany(
            "INSERT INTO audit_records (seq, ts, kind, session_id, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            params,
        )
        return end

    def append(self, entries: Sequence[tuple[str, str | None, Record]]) -> int:
        """Append `(ts, session_id, record)` entries in one transaction (the group commit).
        Returns the last seq written."""
        rows = audit_rows(entries, include_content=self._include_content)
        with _transaction(self._conn):
            seq, _ = self._insert(rows, self._head())
        return seq

    def remove_expired(self, cutoff_ts: str, now_ts: str, retention_days: int | None = None) -> int:
        """Retention: remove the chain's prefix older than `cutoff_ts` and append a checkpoint.

        Only a prefix goes: everything before the first row at or after the cutoff. A row written
        out of time order (the wall clock stepped back) is kept a little longer rather than cut out
        of the middle of the chain. Returns the number of rows removed."""
        conn = self._conn
        with _transaction(conn):
            first = conn.execute("SELECT MIN(seq) FROM audit_records").fetchone()[0]
            if first is None:
                return 0
            first_kept = conn.execute("SELECT MIN(seq) FROM audit_records WHERE ts >= ?", (cutoff_ts,)).fetchone()[0]
            head = self._head()
            through = head[0] if first_kept is None else int(first_kept) - 1
            if through < first:
                return 0
            last_removed_hash = conn.execute("SELECT hash FROM audit_records WHERE seq = ?", (through,)).fetchone()[0]
            conn.execute("INSERT INTO audit_retention_grant (through_seq) VALUES (?)", (through,))
            removed = conn.execute("DELETE FROM audit_records WHERE seq <= ?", (through,)).rowcount
            conn.execute("DELETE FROM audit_retention_grant")
            checkpoint = {
                "removed_from_seq": int(first),
                "removed_through_seq": through,
                "removed_count": removed,
                "last_removed_hash": last_removed_hash,
                "cutoff": cutoff_ts,
                "retention_days": retention_days,
            }
            self._insert([(now_ts, CHECKPOINT_KIND, None, checkpoint)], head)
        return int(removed)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error. IMMEDIATE takes the write lock up
    front, so a transaction never fails half-way on a lock upgrade."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (disk full, I/O error) can leave the transaction open.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        elif self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
