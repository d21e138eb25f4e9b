"""The audit log in PostgreSQL (`store.backend: postgres`): one hash chain per writer.

Several gateway instances write one table. Each appends to its own chain (`chain_id` = its
instance id, primary key `(chain_id, seq)`), so instances never wait on each other; the same
rules as the SQLite store hold within a chain (contiguous `seq`, `prev_hash` links, the hash of
`kt_trio.audit.store.row_hash_of_json`), and a chain's first `prev_hash` is `chain_genesis(name)`.
Each transaction takes an advisory lock on its chain and reads the head inside it, so two writers
that were given the same instance id by mistake still append one after the other instead of
forking the chain.

`data` is stored as the exact canonical JSON text that was hashed (a `jsonb` column would
normalise it and break the hash); query it with `data::jsonb`.

Append-only: with `immutable`, triggers refuse UPDATE, DELETE and TRUNCATE on `audit_records` and
`audit_chains`, for every role including the owner. Retention deletes a chain's prefix under a
transaction-local grant (`kt_trio.retention_chain` / `kt_trio.retention_through`) that the trigger
honours for that chain up to that seq only, and appends a checkpoint in the same transaction. The
owner or a superuser can still disable the triggers: the hash chain and `audit verify` are what
find such an edit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from kt_trio.audit.store import (
    CHECKPOINT_KIND,
    AuditRow,
    audit_rows,
    chain_genesis,
    chain_rows,
    format_ts,
)
from kt_trio.postgres import SCHEMA_LOCK, connect, migrate
from kt_trio.records import Record

COMPONENT = "audit"

# Version 1. `ts` is text in `format_ts`'s fixed-width form (hashed as text; sorts as time).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit_chains (
        chain_id   text PRIMARY KEY,
        created_at text NOT NULL
    );
    CREATE TABLE audit_records (
        chain_id   text   NOT NULL,
        seq        bigint NOT NULL,
        ts         text   COLLATE "C" NOT NULL,  -- byte order is time order, whatever the locale
        kind       text   NOT NULL,
        session_id text,
        data       text   NOT NULL,
        prev_hash  text   NOT NULL,
        hash       text   NOT NULL,
        PRIMARY KEY (chain_id, seq)
    );
    CREATE INDEX audit_records_ts ON audit_records (ts);
    CREATE INDEX audit_records_chain_ts ON audit_records (chain_id, ts);
    CREATE INDEX audit_records_session ON audit_records (session_id, ts);
    CREATE INDEX audit_records_checkpoints ON audit_records (chain_id, seq) WHERE kind = 'checkpoint';
    CREATE FUNCTION kt_trio_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_records' THEN
            IF OLD.chain_id = current_setting('kt_trio.retention_chain', true)
               AND OLD.seq <= COALESCE(NULLIF(current_setting('kt_trio.retention_through', true), '')::bigint, 0)
            THEN
                RETURN OLD;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit records are immutable: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    """,
)

_TRIGGERS = {
    # name -> (table, definition)
    "audit_records_no_update_delete": "BEFORE UPDATE OR DELETE ON audit_records FOR EACH ROW",
    "audit_records_no_truncate": "BEFORE TRUNCATE ON audit_records FOR EACH STATEMENT",
    "audit_chains_no_update_delete": "BEFORE UPDATE OR DELETE ON audit_chains FOR EACH ROW",
    "audit_chains_no_truncate": "BEFORE TRUNCATE ON audit_chains FOR EACH STATEMENT",
}


def set_triggers(conn: psycopg.Connection[Any], immutable: bool) -> None:
    """The config is the authority, as for SQLite: `immutable: false` removes the triggers. Only
    changes what differs, so a least-privileged role (no DDL) starts when nothing needs changing;
    changes are made under the schema lock, so instances starting together do not collide."""
    if _trigger_changes(conn, immutable):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (SCHEMA_LOCK,))
            for statement in _trigger_changes(conn, immutable):
                conn.execute(statement)  # type: ignore[arg-type]  # our own constant SQL


def _trigger_changes(conn: psycopg.Connection[Any], immutable: bool) -> list[str]:
    present = {
        str(name)
        for (name,) in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN"
            " ('audit_records'::regclass, 'audit_chains'::regclass)"
        ).fetchall()
    }
    changes = []
    for name, definition in _TRIGGERS.items():
        table = definition.split(" ON ", 1)[1].split()[0]
        if immutable and name not in present:
            changes.append(f"CREATE TRIGGER {name} {definition} EXECUTE FUNCTION kt_trio_audit_append_only()")
        elif not immutable and name in present:
            changes.append(f"DROP TRIGGER {name} ON {table}")
    return changes


def _lock_chain(conn: psycopg.Connection[Any], chain: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", ("kt_trio audit chain:" + chain,))


def _head(conn: psycopg.Connection[Any], chain: str) -> tuple[int, str]:
    row = conn.execute(
        "SELECT seq, hash FROM audit_records WHERE chain_id = %s ORDER BY seq DESC LIMIT 1", (chain,)
    ).fetchone()
    return (int(row[0]), str(row[1])) if row is not None else (0, chain_genesis(chain))


class PostgresAuditStore:
    """The writer's side: one connection, used from the writer's thread one call at a time
    (`AuditBackend`)."""

    def __init__(self, dsn: str, chain: str, *, strict: bool, include_content: bool) -> None:
        self._dsn = dsn
        self.chain = chain
        self._strict = strict
        self._include_content = include_content
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self._dsn, application_name=f"kt_trio audit {self.chain}"[:63])
        # batch: a commit returns before the WAL is flushed (a killed gateway loses nothing it
        # committed; a crash of the database server may lose the last fraction of a second),
        # like SQLite's synchronous=NORMAL. strict: every commit waits for the flush.
        conn.execute("SET synchronous_commit TO " + ("on" if self._strict else "off"))
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, a new one if the last one broke: once the database is back, the next
        append goes through (what failed meanwhile is the writer's to report)."""
        if self._conn.broken or self._conn.closed:
            self._conn.close()
            self._conn = self._connect()
        return self._conn

    @classmethod
    def open(cls, dsn: str, *, chain: str, immutable: bool, strict: bool, include_content: bool) -> PostgresAuditStore:
        store = cls(dsn, chain, strict=strict, include_content=include_content)
        conn = store._conn
        try:
            migrate(conn, COMPONENT, MIGRATIONS)
            set_triggers(conn, immutable)
            conn.execute(
                "INSERT INTO audit_chains (chain_id, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (chain, format_ts(time.time())),
            )
        except BaseException:
            conn.close()
            raise
        return store

    def close(self) -> None:
        self._conn.close()

    def _insert(self, chain: str, rows: Iterable[AuditRow], head: tuple[int, str]) -> tuple[int, str]:
        params, end = chain_rows(rows, head)
        with (
            self._live().cursor() as cur,
            cur.copy(
                "COPY audit_records (chain_id, seq, ts, kind, session_id, data, prev_hash, hash) FROM STDIN"
            ) as copy,
        ):
            for row in params:
                copy.write_row((chain, *row))
        return end

    def append(self, entries: Sequence[tuple[str, str | None, Record]]) -> int:
        rows = audit_rows(entries, include_content=self._include_content)
        conn = self._live()
        with conn.transaction():
            _lock_chain(conn, self.chain)
            seq, _ = self._insert(self.chain, rows, _head(conn, self.chain))
        return seq

    def remove_expired(self, cutoff_ts: str, now_ts: str, retention_days: int | None = None) -> int:
        """Retention on every chain, each in its own transaction under its chain's lock: a retired
        instance's records expire too, and a live writer's next append sees the checkpoint."""
        chains = [str(c) for (c,) in self._live().execute("SELECT chain_id FROM audit_chains").fetchall()]
        return sum(self._remove_expired(chain, cutoff_ts, now_ts, retention_days) for chain in chains)

    def _remove_expired(self, chain: str, cutoff_ts: str, now_ts: str, retention_days: int | None) -> int:
        conn = self._live()
        with conn.transaction():
            _lock_chain(conn, chain)
            row = conn.execute("SELECT MIN(seq) FROM audit_records WHERE chain_id = %s", (chain,)).fetchone()
            first = row[0] if row else None
            if first is None:
                return 0
            row = conn.execute(
                "SELECT MIN(seq) FROM audit_records WHERE chain_id = %s AND ts >= %s", (chain, cutoff_ts)
            ).fetchone()
            first_kept = row[0] if row else None
            head = _head(conn, chain)
            through = head[0] if first_kept is None else int(first_kept) - 1
            if through < first:
                return 0
            found = conn.execute(
                "SELECT hash FROM audit_records WHERE chain_id = %s AND seq = %s", (chain, through)
            ).fetchone()
            assert found is not None
            conn.execute("SELECT set_config('kt_trio.retention_chain', %s, true)", (chain,))
            conn.execute("SELECT set_config('kt_trio.retention_through', %s, true)", (str(through),))
            removed = conn.execute(
                "DELETE FROM audit_records WHERE chain_id = %s AND seq <= %s", (chain, through)
            ).rowcount
            conn.execute("SELECT set_config('kt_trio.retention_through', '', true)")
            checkpoint = {
                "removed_from_seq": int(first),
                "removed_through_seq": through,
                "removed_count": removed,
                "last_removed_hash": str(found[0]),
                "cutoff": cutoff_ts,
                "retention_days": retention_days,
            }
            self._insert(chain, [(now_ts, CHECKPOINT_KIND, None, checkpoint)], head)
        return int(removed)
