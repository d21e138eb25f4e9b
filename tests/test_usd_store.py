"""Daily USD budgets in the key store: `keys create --daily-usd`, the column added to key
databases made before it (SQLite and a real PostgreSQL), and the day's spend shared by every
process on one store, each alert threshold reported once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kt_trio.keys.postgres import MIGRATIONS, open_postgres_key_store
from kt_trio.keys.spend import daily_spend, record_spend
from kt_trio.keys.store import KeyStore, KeyStoreError
from kt_trio.postgres import connect, migrate

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400.0

# keys.db as kt_trio made it before `--models` and `--daily-usd` (one key in it).
OLD_SQLITE = """
CREATE TABLE keys_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE gateway_keys (
    name TEXT PRIMARY KEY, prefix TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, pack TEXT, team TEXT,
    scopes TEXT NOT NULL, expires_at REAL, max_sessions INTEGER, messages_per_minute INTEGER,
    daily_tokens INTEGER, created_at REAL NOT NULL, last_used_at REAL, revoked_at REAL,
    terminate INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE key_daily_usage (
    key_name TEXT NOT NULL, day TEXT NOT NULL, tokens INTEGER NOT NULL DEFAULT 0,
    alerted_upto REAL NOT NULL DEFAULT 0, PRIMARY KEY (key_name, day)
);
INSERT INTO gateway_keys (name, prefix, hash, scopes, created_at)
VALUES ('old', 'kt_gk_abcdefghijkl', 'x', 'realtime,chat', 1.0);
"""


def kt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kt_trio", "keys", *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_an_old_keys_db_gets_the_column_and_the_spend_table(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SQLITE)
    conn.close()
    store = KeyStore.open(path)
    try:
        old = store.get("old")
        assert old is not None and old.daily_usd is None and old.models is None
        _, made = store.create_key("new", daily_usd=2.5, team="blue")
        assert made.daily_usd == 2.5
        assert record_spend(store.db, "key", "new", 1.0, 2.5, T0).used_usd == 1.0
    finally:
        store.close()


def test_spend_alerts_fire_once_per_day_across_connections_and_reset_at_utc_midnight(tmp_path: Path) -> None:
    one, two = KeyStore.open(tmp_path / "keys.db"), KeyStore.open(tmp_path / "keys.db")
    try:
        first = record_spend(one.db, "team", "blue", 0.6, 1.0, T0)
        assert first.crossed == (0.5,) and not first.exceeded
        again = record_spend(two.db, "team", "blue", 0.0, 1.0, T0)  # another process: nothing new
        assert again.crossed == () and again.used_usd == pytest.approx(0.6)
        spent = record_spend(two.db, "team", "blue", 0.4, 1.0, T0)
        assert spent.crossed == (0.8, 1.0) and spent.exceeded
        assert daily_spend(one.db, "team", "blue", 1.0, T0).exceeded
        assert not daily_spend(one.db, "key", "blue", 1.0, T0).exceeded  # a key of that name is another budget
        tomorrow = daily_spend(one.db, "team", "blue", 1.0, T0 + DAY)
        assert tomorrow.used_usd == 0.0 and not tomorrow.exceeded
    finally:
        one.close()
        two.close()


def test_bad_amounts_are_refused(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path / "keys.db")
    try:
        for bad in (0.0, -1.0, float("nan"), float("inf")):
            with pytest.raises(KeyStoreError, match="daily_usd"):
                store.create_key(f"k{len(store.list_keys())}", daily_usd=bad)
        with pytest.raises(ValueError):
            record_spend(store.db, "key", "k", float("nan"), 1.0, T0)
    finally:
        store.close()


def test_the_cli_sets_and_lists_the_daily_usd_budget(tmp_path: Path) -> None:
    made = kt("create", "--name", "alice", "--daily-usd", "12.5", "--state-dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    listed = json.loads(kt("list", "--json", "--state-dir", str(tmp_path)).stdout)
    assert [(k["name"], k["daily_usd"]) for k in listed] == [("alice", 12.5)]
    for bad in ("0", "-3", "nan", "inf", "five"):
        refused = kt("create", "--name", "bob", "--daily-usd", bad, "--state-dir", str(tmp_path))
        assert refused.returncode == 2 and "--daily-usd" in refused.stderr, refused.stderr


def test_an_old_postgres_key_schema_is_migrated_and_spend_is_shared(pg_dsn: str) -> None:
    # The database as the previous kt_trio left it: the first two migrations and one key.
    conn = connect(pg_dsn, application_name="test")
    try:
        migrate(conn, "keys", MIGRATIONS[:2])
        conn.execute(
            "INSERT INTO gateway_keys (name, prefix, hash, scopes, created_at)"
            " VALUES ('old', 'kt_gk_abcdefghijkl', 'x', 'realtime', 1.0)"
        )
    finally:
        conn.close()
    a, b = open_postgres_key_store(pg_dsn), open_postgres_key_store(pg_dsn)
    try:
        old = a.get("old")
        assert old is not None and old.daily_usd is None
        _, made = a.create_key("payments-app", daily_usd=1.0, team="payments")
        assert b.get("payments-app") == made and made.daily_usd == 1.0
        assert record_spend(a.db, "key", "payments-app", 0.6, 1.0, T0).crossed == (0.5,)
        assert record_spend(b.db, "key", "payments-app", 0.5, 1.0, T0).crossed == (0.8, 1.0)
        assert daily_spend(a.db, "key", "payments-app", 1.0, T0).used_usd == pytest.approx(1.1)
    finally:
        a.close()
        b.close()
