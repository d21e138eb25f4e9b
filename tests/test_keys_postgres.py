"""Gateway keys in a real PostgreSQL, shared by several instances; the CLI with `--config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import trio

from kt_trio.config import Store
from kt_trio.keys import KeyRing
from kt_trio.keys.store import open_key_store
from tests.postgres_server import ADMIN, ADMIN_PASSWORD, GATEWAY_PASSWORD, PostgresServer

T0 = 1_800_000_000.0


def store(dsn: str) -> Store:
    return Store(backend="postgres", postgres_dsn=dsn)


def write_config(tmp_path: Path, name: str = "gateway.yaml") -> Path:
    """A gateway config whose store is PostgreSQL, the DSN (with its password) from the environment."""
    config = tmp_path / name
    config.write_text(
        f"gateway:\n  state_dir: {tmp_path / 'state'}\nstore:\n  backend: postgres\n  postgres_dsn: ${{KT_TEST_DSN}}\n",
        encoding="utf-8",
    )
    return config


def kt(config: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KT_TEST_DSN": dsn}
    return subprocess.run(
        [sys.executable, "-m", "kt_trio", "keys", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


async def test_a_key_made_through_the_cli_works_on_every_instance_until_revoked(pg_dsn: str, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    made = kt(config, pg_dsn, "create", "--name", "alice", "--team", "payments", "--daily-tokens", "100")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("kt_gk_")
    assert GATEWAY_PASSWORD not in made.stdout + made.stderr
    assert not (tmp_path / "state" / "keys.db").exists()  # nothing went to SQLite

    async with (
        await KeyRing.open(tmp_path / "a", store(pg_dsn)) as a,
        await KeyRing.open(tmp_path / "b", store(pg_dsn)) as b,
    ):
        for ring in (a, b):
            decision = await ring.authenticate(key, scope="realtime")
            assert decision.ok and decision.key is not None and decision.key.team == "payments"

        # Token use is shared: both instances add, and each threshold is reported once.
        async with trio.open_nursery() as nursery:
            for ring in (a, b) * 5:
                nursery.start_soon(ring.record_tokens, "alice", 10, T0)
        usage = await b.daily_usage("alice", T0)
        assert usage.used == 100 and usage.exceeded

        live = {"alice"}
        assert await a.revoked_since(live) == set()
        revoked = kt(config, pg_dsn, "revoke", "alice", "--terminate")
        assert revoked.returncode == 0, revoked.stderr
        for ring in (a, b):
            assert await ring.revoked_since(live) == {"alice"}
            decision = await ring.authenticate(key, scope="realtime")
            assert decision.status == 401 and "revoked" in decision.message

    listing = kt(config, pg_dsn, "list", "--json")
    assert listing.returncode == 0, listing.stderr
    (entry,) = json.loads(listing.stdout)
    assert entry["name"] == "alice" and entry["state"] == "revoked" and key not in listing.stdout

    again = kt(config, pg_dsn, "create", "--name", "alice")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_only_hashes_are_stored(pg_dsn: str) -> None:
    keys = open_key_store("unused", store(pg_dsn))
    try:
        key, record = keys.create_key("bob")
    finally:
        keys.close()
    with psycopg.connect(pg_dsn) as conn:
        dump = json.dumps(conn.execute("SELECT * FROM gateway_keys").fetchall(), default=str)
    assert record.prefix in dump and key not in dump and key[len(record.prefix) :] not in dump


async def test_the_gateway_reconnects_after_the_database_dropped_its_connection(
    pg_dsn: str, postgres_server: PostgresServer
) -> None:
    keys = open_key_store("unused", store(pg_dsn))
    try:
        key, _ = keys.create_key("carol")
    finally:
        keys.close()
    async with await KeyRing.open("unused", store(pg_dsn)) as ring:
        assert (await ring.authenticate(key, scope="realtime")).ok
        dbname = pg_dsn.rsplit("/", 1)[1]
        with psycopg.connect(postgres_server.dsn(user=ADMIN, password=ADMIN_PASSWORD), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name = 'kt_trio keys'",
                (dbname,),
            ).fetchone()
        assert killed == (1,)
        assert (await ring.authenticate(key, scope="realtime")).ok


def test_a_bad_dsn_is_a_config_error_that_does_not_quote_it(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("store:\n  backend: postgres\n  postgres_dsn: 'host=x password=s3cr3t-pw port'\n")
    out = subprocess.run(
        [sys.executable, "-m", "kt_trio", "keys", "list", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2
    assert "gateway.yaml:3:" in out.stderr and "store.postgres_dsn" in out.stderr and "s3cr3t" not in out.stderr

    config.write_text("store:\n  backend: postgres\n")
    out = subprocess.run(
        [sys.executable, "-m", "kt_trio", "keys", "list", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "needs store.postgres_dsn" in out.stderr
