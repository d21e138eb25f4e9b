"""`KeyDb` over SQLite (`<state_dir>/keys.db`): the primitives `kt_trio.keys.store.KeyStore` runs on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class SqliteKeyDb:
    integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    busy_errors: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row, or None. Reads the result to the end: in autocommit mode that ends the
        statement's read transaction now, so the gateway's long-lived connection never pins an old
        WAL snapshot (and so never misses a key the CLI just created or revoked)."""
        rows = self._conn.execute(sql, params).fetchall()
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE: take the write lock up front, so a read-modify-write (token usage, alert
        # thresholds) cannot interleave with another process's and a busy database waits
        # (busy_timeout) at BEGIN instead of failing halfway.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
