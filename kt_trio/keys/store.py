"""The gateway key database: `<state_dir>/keys.db` (SQLite) or PostgreSQL, synchronous.

`KeyStore` holds the logic once, over `KeyDb`'s few SQL primitives: `kt_trio.keys.sqlite`,
`kt_trio.keys.postgres` for `store.backend: postgres` (several gateway instances share its keys).

The CLI (`kt_trio.keys.cli`) uses `KeyStore` directly; the gateway uses it through `KeyRing`
(`kt_trio.keys.auth`), which runs every call on a worker thread. Both may have the database open
at once: WAL mode lets readers go on while a writer commits, every write is one short
`BEGIN IMMEDIATE` transaction, and `busy_timeout` makes a writer wait for the other instead of
failing.

What is stored about a key is its public prefix and the SHA-256 of the whole key, never the key.
A key carries 256 bits from `secrets.token_urlsafe(32)`, so a fast unsalted hash is enough: there
is no dictionary to try and no way to brute-force 2^256 (a slow password hash would only make
every handshake slower). The prefix (`kt_gk_` plus the first `PREFIX_CHARS` characters of the
random part) is what lists, logs and `keys revoke` show; a lookup finds the row by prefix and then
compares the full hash in constant time.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from attrs import frozen

from kt_trio.keys.sqlite import SqliteKeyDb

if TYPE_CHECKING:
    from kt_trio.config.schema import Store

DB_NAME = "keys.db"
SCHEMA_VERSION = 1
KEY_PREFIX = "kt_gk_"
# 12 URL-safe characters = 72 bits: collisions between keys are out of reach (a UNIQUE index
# catches the impossible one and `create_key` draws again), and the 31 characters that stay
# secret still carry 186 bits.
PREFIX_CHARS = 12
KEY_RANDOM_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits

SCOPES = ("realtime", "chat", "events", "admin")
DEFAULT_SCOPES = ("realtime", "chat")  # least privilege: events and admin only when asked for
ALERT_THRESHOLDS = (0.5, 0.8, 1.0)
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # names go into logs and metric labels

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gateway_keys (
    name                TEXT PRIMARY KEY,
    prefix              TEXT NOT NULL UNIQUE,   -- 'kt_gk_' + the first PREFIX_CHARS of the key
    hash                TEXT NOT NULL,          -- SHA-256 hex of the whole key; the key itself is never stored
    pack                TEXT,
    team                TEXT,
    scopes              TEXT NOT NULL,          -- comma-separated, from SCOPES
    expires_at          REAL,                   -- epoch seconds; NULL: never
    max_sessions        INTEGER,
    messages_per_minute INTEGER,
    daily_tokens        INTEGER,
    created_at          REAL NOT NULL,
    last_used_at        REAL,
    revoked_at          REAL,
    terminate           INTEGER NOT NULL DEFAULT 0, -- revoked with --terminate: close live sessions
    models              TEXT,                   -- comma-separated models the key may use; NULL: any
    daily_usd           REAL                    -- USD budget per UTC day (kt_trio.keys.spend); NULL: none
);
CREATE TABLE IF NOT EXISTS key_daily_usage (
    key_name     TEXT NOT NULL,
    day          TEXT NOT NULL,                 -- UTC date, YYYY-MM-DD
    tokens       INTEGER NOT NULL DEFAULT 0,
    alerted_upto REAL NOT NULL DEFAULT 0,       -- the highest alert threshold already reported
    PRIMARY KEY (key_name, day)
);
CREATE TABLE IF NOT EXISTS daily_spend (            -- kt_trio.keys.spend
    scope        TEXT NOT NULL,                 -- 'key' or 'team'
    name         TEXT NOT NULL,                 -- the key's name or the team's
    day          TEXT NOT NULL,                 -- UTC date, YYYY-MM-DD
    usd          REAL NOT NULL DEFAULT 0,
    alerted_upto REAL NOT NULL DEFAULT 0,       -- the highest alert threshold already reported
    PRIMARY KEY (scope, name, day)
);
"""

# `last_used_at` is written at most once a minute per key: a busy key does not turn every
# handshake into a write transaction, and "last used" in a list is not read to the second.
LAST_USED_RESOLUTION_SECS = 60.0


class KeyStoreError(Exception):
    """A key operation failed in a way the user can act on (duplicate name, no such key, ...)."""


@frozen
class KeyRecord:
    """One stored key: everything but the secret (which is not stored) and its hash."""

    name: str
    prefix: str
    pack: str | None
    team: str | None
    scopes: tuple[str, ...]
    expires_at: float | None
    max_sessions: int | None
    messages_per_minute: int | None
    daily_tokens: int | None
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    terminate: bool
    # `keys create --models`: the only models the key (and its client secrets) may use; None: any.
    models: tuple[str, ...] | None = None
    # `keys create --daily-usd`: spend per UTC day in US dollars (`kt_trio.keys.spend`); None: none.
    daily_usd: float | None = None

    def state(self, now: float) -> str:
        """`revoked`, `expired` or `active` (a revoked key reads as revoked even once it expires)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


@frozen
class DailyBudgetState:
    """A key's token use on one UTC day. `crossed`: alert thresholds newly crossed by this call
    (each is reported once per key and day, even across restarts and gateway processes)."""

    key_name: str
    day: str
    used: int
    limit: int | None
    crossed: tuple[float, ...] = ()

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def db_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / DB_NAME


def open_key_store(state_dir: str | Path, store: Store | None = None) -> KeyStore:
    """The key database `store.backend` names: `<state_dir>/keys.db`, or PostgreSQL, shared by
    every gateway instance pointed at it. Synchronous: the gateway calls it on a worker thread."""
    if store is not None and store.backend == "postgres":
        from kt_trio.keys.postgres import open_postgres_key_store  # psycopg only when it is used

        assert store.postgres_dsn is not None  # the loader requires it
        return open_postgres_key_store(store.postgres_dsn)
    return KeyStore.open(db_path(state_dir))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    # A body starting with "-" would make `keys revoke <prefix>` without `kt_gk_` read as an
    # option; drawing again costs one bit of the 256 in 1 case of 64.
    while True:
        body = secrets.token_urlsafe(KEY_RANDOM_BYTES)
        if not body.startswith("-"):
            return KEY_PREFIX + body


def key_prefix(key: str) -> str | None:
    """The lookup prefix of a presented key, or None when it cannot be one of ours."""
    if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + PREFIX_CHARS + 1:
        return None
    return key[: len(KEY_PREFIX) + PREFIX_CHARS]


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """`realtime,chat` -> ('realtime', 'chat') in SCOPES order; ValueError names an unknown scope."""
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    items = [s for s in items if s]
    unknown = [s for s in items if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r} (choose from {', '.join(SCOPES)})")
    if not items:
        raise ValueError("at least one scope is needed")
    return tuple(s for s in SCOPES if s in items)


def parse_models(models: str | Iterable[str]) -> tuple[str, ...]:
    """`gpt-4o,gpt-realtime` -> ('gpt-4o', 'gpt-realtime'); KeyStoreError when none is named."""
    items = [m.strip() for m in (models.split(",") if isinstance(models, str) else models)]
    found = tuple(dict.fromkeys(m for m in items if m))
    if not found:
        raise KeyStoreError("--models needs at least one model name")
    return found


def _add_columns(conn: sqlite3.Connection) -> None:
    """keys.db made before `--models` or `--daily-usd` existed gets the column (NULL: any model,
    no USD budget; `_SCHEMA` already added the spend table)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(gateway_keys)").fetchall()}
    for column, kind in (("models", "TEXT"), ("daily_usd", "REAL")):
        if column not in columns:
            try:
                conn.execute(f"ALTER TABLE gateway_keys ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError:  # another process added it first
                pass


_COLUMNS = (
    "name, prefix, pack, team, scopes, expires_at, max_sessions, messages_per_minute, daily_tokens,"
    " created_at, last_used_at, revoked_at, terminate, models, daily_usd"
)


def _record(row: Sequence[Any]) -> KeyRecord:
    (name, prefix, pack, team, scopes, expires_at, max_sessions, mpm, daily, created, last_used, revoked, term) = row[
        :13
    ]
    models = row[13]
    return KeyRecord(
        name=name,
        prefix=prefix,
        pack=pack,
        team=team,
        scopes=tuple(s for s in scopes.split(",") if s),
        expires_at=expires_at,
        max_sessions=max_sessions,
        messages_per_minute=mpm,
        daily_tokens=daily,
        created_at=created,
        last_used_at=last_used,
        revoked_at=revoked,
        terminate=bool(term),
        models=tuple(m for m in models.split(",") if m) if models is not None else None,
        daily_usd=row[14],
    )


class KeyDb(Protocol):
    """The few SQL primitives `KeyStore` needs: SQLite (`SqliteKeyDb`) or PostgreSQL
    (`kt_trio.keys.postgres`). SQL is written once, with `?` placeholders, in the subset both
    dialects share."""

    # Raised when an INSERT hits a unique constraint (a prefix collision, a concurrent create).
    integrity_errors: tuple[type[Exception], ...]
    # Raised when another writer holds a lock long enough to give up; "last used" can wait.
    busy_errors: tuple[type[Exception], ...]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class KeyStore:
    """One connection to the key database (keys.db, or PostgreSQL through `open_key_store`). Not
    thread-safe by itself: `KeyRing` serialises its calls with a limiter of 1; the CLI is
    single-threaded."""

    def __init__(self, db: KeyDb, path: Path | None = None) -> None:
        self.db = db
        self.path = path  # keys.db; None for PostgreSQL

    @classmethod
    def open(cls, path: str | Path) -> KeyStore:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: trio's thread cache may run successive to_thread calls on
        # different worker threads; KeyRing's limiter of 1 guarantees they never overlap.
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA journal_mode=WAL")
            # A revoke must survive a power cut, and key writes are rare: fsync every commit.
            conn.execute("PRAGMA synchronous=FULL")
            # Deleted pages are zeroed, so nothing once written lingers in the file's free pages.
            conn.execute("PRAGMA secure_delete=ON")
            conn.executescript(_SCHEMA)  # IF NOT EXISTS: safe while another process has it open
            _add_columns(conn)
            conn.execute(
                "INSERT OR IGNORE INTO keys_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except BaseException:
            conn.close()
            raise
        return cls(SqliteKeyDb(conn), path)

    def close(self) -> None:
        self.db.close()

    # --- the CLI's side ------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        pack: str | None = None,
        team: str | None = None,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        expires_at: float | None = None,
        max_sessions: int | None = None,
        messages_per_minute: int | None = None,
        daily_tokens: int | None = None,
        now: float | None = None,
        models: Sequence[str] | None = None,
        daily_usd: float | None = None,
    ) -> tuple[str, KeyRecord]:
        """Make a key; returns (the key, its record). The key exists only in the return value:
        the caller shows it once and forgets it."""
        if not NAME_RE.fullmatch(name):
            raise KeyStoreError(
                f"invalid key name {name!r}: 1-64 characters, letters, digits and . _ @ - (starting with a letter"
                " or digit)"
            )
        scopes = parse_scopes(scopes)
        for label, value in (
            ("max_sessions", max_sessions),
            ("messages_per_minute", messages_per_minute),
            ("daily_tokens", daily_tokens),
        ):
            if value is not None and value < 1:
                raise KeyStoreError(f"{label} must be at least 1, got {value}")
        if daily_usd is not None and not (0 < daily_usd < math.inf):
            raise KeyStoreError(f"daily_usd must be a number of dollars greater than 0, got {daily_usd}")
        allowed = parse_models(models) if models is not None else None
        created = time.time() if now is None else now
        for _ in range(5):
            key = new_key()
            prefix = key_prefix(key)
            assert prefix is not None
            try:
                with self.db.transaction():
                    if self.db.one("SELECT 1 FROM gateway_keys WHERE name = ?", (name,)):
                        raise KeyStoreError(
                            f"a key named {name!r} already exists"
                            " (names stay taken after revocation, so audit records always name one key)"
                        )
                    self.db.run(
                        f"INSERT INTO gateway_keys ({_COLUMNS}, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            name,
                            prefix,
                            pack,
                            team,
                            ",".join(scopes),
                            expires_at,
                            max_sessions,
                            messages_per_minute,
                            daily_tokens,
                            created,
                            None,
                            None,
                            0,
                            ",".join(allowed) if allowed is not None else None,
                            daily_usd,
                            hash_key(key),
                        ),
                    )
            except self.db.integrity_errors:
                continue  # a prefix collision (72 bits: never in practice): draw another key
            record = self.get(name)
            assert record is not None
            return key, record
        raise KeyStoreError("could not draw a key with a unique prefix")  # pragma: no cover

    def get(self, name: str) -> KeyRecord | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM gateway_keys WHERE name = ?", (name,))
        return None if row is None else _record(row)

    def list_keys(self) -> list[KeyRecord]:
        rows = self.db.all(f"SELECT {_COLUMNS} FROM gateway_keys ORDER BY created_at, name")
        return [_record(row) for row in rows]

    def find(self, name_or_prefix: str) -> KeyRecord | None:
        """A key by name, else by prefix (with or without `kt_gk_`)."""
        record = self.get(name_or_prefix)
        if record is not None:
            return record
        prefix = name_or_prefix if name_or_prefix.startswith(KEY_PREFIX) else KEY_PREFIX + name_or_prefix
        row = self.db.one(f"SELECT {_COLUMNS} FROM gateway_keys WHERE prefix = ?", (prefix,))
        return None if row is None else _record(row)

    def revoke(self, name_or_prefix: str, *, terminate: bool = False, now: float | None = None) -> KeyRecord:
        """Revoke a key (by name or prefix). Revoking again keeps the first time; `terminate` is
        sticky (asking for it on an already revoked key still closes its live sessions)."""
        when = time.time() if now is None else now
        with self.db.transaction():
            record = self.find(name_or_prefix)
            if record is None:
                raise KeyStoreError(f"no key with name or prefix {name_or_prefix!r}")
            self.db.run(
                "UPDATE gateway_keys SET revoked_at = COALESCE(revoked_at, ?),"
                " terminate = CASE WHEN ? = 1 THEN 1 ELSE terminate END WHERE name = ?",
                (when, int(terminate), record.name),
            )
        revoked = self.get(record.name)
        assert revoked is not None
        return revoked

    # --- the gateway's side --------------------------------------------------------------------

    def lookup(self, prefix: str) -> tuple[KeyRecord, str] | None:
        """(record, stored hash) of the key with this prefix."""
        row = self.db.one(f"SELECT {_COLUMNS}, hash FROM gateway_keys WHERE prefix = ?", (prefix,))
        return None if row is None else (_record(row[:-1]), str(row[-1]))

    def touch(self, name: str, now: float) -> None:
        """Note a use of the key, at most once per LAST_USED_RESOLUTION_SECS."""
        with self.db.transaction():
            self.db.run(
                "UPDATE gateway_keys SET last_used_at = ? WHERE name = ? AND"
                " (last_used_at IS NULL OR last_used_at <= ?)",
                (now, name, now - LAST_USED_RESOLUTION_SECS),
            )

    def record_tokens(
        self, key_name: str, tokens: int, now: float, thresholds: Sequence[float] = ALERT_THRESHOLDS
    ) -> DailyBudgetState:
        """Add `tokens` to the key's use today (UTC) and report the thresholds crossed by it."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        day = utc_day(now)
        db = self.db
        with db.transaction():
            db.run(
                "INSERT INTO key_daily_usage (key_name, day, tokens) VALUES (?, ?, ?)"
                " ON CONFLICT (key_name, day) DO UPDATE SET tokens = key_daily_usage.tokens + excluded.tokens",
                (key_name, day, tokens),
            )
            used, alerted = db.one(
                "SELECT tokens, alerted_upto FROM key_daily_usage WHERE key_name = ? AND day = ?", (key_name, day)
            )
            row = db.one("SELECT daily_tokens FROM gateway_keys WHERE name = ?", (key_name,))
            limit = None if row is None else row[0]
            crossed: tuple[float, ...] = ()
            if limit:
                # The same hair of tolerance as SessionBudget: a threshold fires at its exact count.
                crossed = tuple(t for t in sorted(set(thresholds)) if alerted < t and used >= t * limit - 1e-9)
                if crossed:
                    db.run(
                        "UPDATE key_daily_usage SET alerted_upto = ? WHERE key_name = ? AND day = ?",
                        (crossed[-1], key_name, day),
                    )
        return DailyBudgetState(key_name, day, int(used), limit, crossed)

    def daily_usage(self, key_name: str, now: float) -> DailyBudgetState:
        day = utc_day(now)
        row = self.db.one("SELECT tokens FROM key_daily_usage WHERE key_name = ? AND day = ?", (key_name, day))
        limit = self.db.one("SELECT daily_tokens FROM gateway_keys WHERE name = ?", (key_name,))
        return DailyBudgetState(key_name, day, 0 if row is None else int(row[0]), None if limit is None else limit[0])

    def terminated(self, names: Iterable[str]) -> set[str]:
        """Those of `names` that are revoked with terminate requested."""
        names = list(names)
        found: set[str] = set()
        for start in range(0, len(names), 500):  # stay well under SQLite's bound-parameter limit
            chunk = names[start : start + 500]
            rows = self.db.all(
                "SELECT name FROM gateway_keys WHERE terminate = 1 AND revoked_at IS NOT NULL"
                f" AND name IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update(str(r[0]) for r in rows)
        return found
