"""PostgreSQL plumbing shared by the key store and the audit log (`store.backend: postgres`).

psycopg 3's synchronous API only: its async connection is asyncio-only (it does not run under
Trio), so every caller runs these on a worker thread (`trio.to_thread` with a limiter of 1, the
same pattern as the SQLite stores) or from the single-threaded CLI.

The DSN holds a password. Nothing here puts the DSN in a message: errors name the server by
`describe_dsn` (host, port, database, user), and any text that came from libpq is passed through
`scrub` first, in case a future libpq quotes the connection string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import conninfo

# Applied in order, each in its own transaction; a component's version is how many have run.
Migrations = Sequence[str]

CONNECT_TIMEOUT_SECS = 10  # unless the DSN says otherwise: a dead server fails a start, not hangs it
SCHEMA_LOCK = "kt_trio schema"  # the advisory lock two instances starting at once take in turn


class PostgresError(Exception):
    """The database cannot be reached or used; the message never holds the password."""


def dsn_problem(dsn: str) -> str | None:
    """None for a DSN libpq can parse, else a message that quotes nothing of it."""
    try:
        conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "not a valid PostgreSQL connection string (a postgresql:// URI or key=value pairs)"
    return None


def _password(dsn: str) -> str | None:
    try:
        return conninfo.conninfo_to_dict(dsn).get("password")  # type: ignore[return-value]
    except psycopg.ProgrammingError:
        return None


def describe_dsn(dsn: str) -> str:
    """`user@host:port/dbname` for messages: what the DSN points at, without its password."""
    try:
        parts: dict[str, Any] = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    user = parts.get("user")
    where = f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or user or ''}"
    return f"{user}@{where}" if user else where


def scrub(text: str, dsn: str) -> str:
    """`text` with the DSN's password (and the DSN itself) masked."""
    password = _password(dsn)
    text = text.replace(dsn, describe_dsn(dsn))
    if password:
        text = text.replace(password, "***")
    return text


def connect(dsn: str, *, application_name: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection, or PostgresError naming the server (never the password)."""
    params: dict[str, Any] = {"application_name": application_name}
    if "connect_timeout" not in conninfo.conninfo_to_dict(dsn):
        params["connect_timeout"] = CONNECT_TIMEOUT_SECS
    try:
        return psycopg.connect(dsn, autocommit=autocommit, **params)
    except psycopg.Error as exc:
        # `from None`: the original exception is not chained into tracebacks (belt and braces).
        raise PostgresError(f"cannot connect to PostgreSQL at {describe_dsn(dsn)}: {scrub(str(exc), dsn)}") from None


def migrate(conn: psycopg.Connection[Any], component: str, migrations: Migrations) -> None:
    """Bring `component`'s tables to the newest version; idempotent, safe when several instances
    start at once (they take an advisory lock in turn). A database already up to date is only
    read, so a gateway role without CREATE rights starts once the owner created the schema."""
    if _version(conn, component) == len(migrations):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (SCHEMA_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS kt_trio_schema (component text PRIMARY KEY, version integer NOT NULL)")
        current = _version(conn, component) or 0
        if current > len(migrations):
            raise PostgresError(
                f"the database's {component} schema is version {current}, newer than this kt_trio knows"
                f" ({len(migrations)}): upgrade kt_trio"
            )
        for sql in migrations[current:]:
            conn.execute(sql)  # type: ignore[arg-type]  # our own constant SQL
        conn.execute(
            "INSERT INTO kt_trio_schema (component, version) VALUES (%s, %s)"
            " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (component, len(migrations)),
        )


def _version(conn: psycopg.Connection[Any], component: str) -> int | None:
    row = conn.execute("SELECT to_regclass('kt_trio_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute("SELECT version FROM kt_trio_schema WHERE component = %s", (component,)).fetchone()
    return None if found is None else int(found[0])
