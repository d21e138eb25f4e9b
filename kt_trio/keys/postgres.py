"""Gateway keys in PostgreSQL (`store.backend: postgres`): one table every instance reads.

A key created or revoked through `kt_trio keys ... --config` on any host counts at every
instance's next handshake: `KeyRing` keeps no cache and looks each presented key up by prefix
(one indexed SELECT), and the revocation poll (`--terminate`) asks the same table. Per-key daily
token use is shared the same way: the upsert takes the row's lock, so two instances adding tokens
at once add both, and an alert threshold is reported by exactly one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg

from kt_trio.keys.spend import POSTGRES_MIGRATION
from kt_trio.keys.store import KeyStore
from kt_trio.postgres import connect, migrate

COMPONENT = "keys"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE gateway_keys (
        name                text PRIMARY KEY,
        prefix              text NOT NULL UNIQUE,   -- 'kt_gk_' + the first PREFIX_CHARS of the key
        hash                text NOT NULL,          -- SHA-256 hex of the whole key; never the key
        pack                text,
        team                text,
        scopes              text NOT NULL,          -- comma-separated, from SCOPES
        expires_at          double precision,       -- epoch seconds; NULL: never
        max_sessions        integer,
        messages_per_minute integer,
        daily_tokens        bigint,
        created_at          double precision NOT NULL,
        last_used_at        double precision,
        revoked_at          double precision,
        terminate           integer NOT NULL DEFAULT 0
    );
    CREATE INDEX gateway_keys_terminated ON gateway_keys (name) WHERE terminate = 1 AND revoked_at IS NOT NULL;
    CREATE TABLE key_daily_usage (
        key_name     text NOT NULL,
        day          text NOT NULL,                 -- UTC date, YYYY-MM-DD
        tokens       bigint NOT NULL DEFAULT 0,
        alerted_upto double precision NOT NULL DEFAULT 0,
        PRIMARY KEY (key_name, day)
    );
    """,
    # `keys create --models`: comma-separated models the key may use; NULL: any.
    "ALTER TABLE gateway_keys ADD COLUMN models text;",
    # `keys create --daily-usd` and the day's spend of keys and teams (kt_trio.keys.spend).
    POSTGRES_MIGRATION,
)


@lru_cache(maxsize=64)
def _pg(sql: str) -> str:
    """`KeyStore`'s `?` placeholders as psycopg's `%s` (its SQL has no other `?` or `%`)."""
    return sql.replace("?", "%s")


class PostgresKeyDb:
    """`KeyDb` over one autocommit psycopg connection, reconnected when it breaks (a database
    restart must not leave a gateway refusing every key until it is restarted too)."""

    integrity_errors: tuple[type[Exception], ...] = (psycopg.errors.UniqueViolation,)
    # A row lock makes the other writer wait rather than fail, so nothing is "busy" here.
    busy_errors: tuple[type[Exception], ...] = ()

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = connect(self._dsn, application_name="kt_trio keys")
        try:
            migrate(conn, COMPONENT, MIGRATIONS)
        except BaseException:
            conn.close()
            raise
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        if self._conn.broken or self._conn.closed:
            self._conn.close()
            self._conn = self._connect()
        return self._conn

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        conn = self._live()
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        try:
            return conn.execute(_pg(sql), params)  # type: ignore[arg-type]
        except psycopg.OperationalError:
            # The server closed the connection (a restart, an idle timeout): a statement of its
            # own, outside a transaction, is safe to run once more on a new connection.
            if not (idle and conn.broken):
                raise
            return self._live().execute(_pg(sql), params)  # type: ignore[arg-type]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._execute(sql, params).rowcount

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._live().transaction():
            yield

    def close(self) -> None:
        self._conn.close()


def open_postgres_key_store(dsn: str) -> KeyStore:
    """A `KeyStore` on the database `dsn` names; creates (or upgrades) its tables first."""
    return KeyStore(PostgresKeyDb(dsn))
