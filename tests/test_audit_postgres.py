"""The audit log in a real PostgreSQL: per-writer chains, append-only triggers, retention, verify."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import trio

from kt_trio.audit import open_audit_log
from kt_trio.audit.postgres_reader import PostgresSource
from kt_trio.audit.store import chain_genesis
from kt_trio.config import AuditLoggerSettings, Store
from kt_trio.postgres import PostgresError, connect
from kt_trio.records import MessageSeen, SessionStarted
from tests.postgres_server import ADMIN, ADMIN_PASSWORD, GATEWAY_PASSWORD, PostgresServer

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400.0


def store(dsn: str) -> Store:
    return Store(backend="postgres", postgres_dsn=dsn)


async def write_session(dsn: str, chain: str, sid: str, messages: int, **settings: object) -> None:
    now = [T0]
    async with open_audit_log(
        "unused", AuditLoggerSettings(**settings), backend=store(dsn), chain=chain, clock=lambda: now[0]
    ) as audit:
        await audit.write(sid, SessionStarted(sid, "/v1/realtime", "mock", "gpt-realtime", "127.0.0.1", now[0]))
        for seq in range(messages):
            await audit.write(sid, MessageSeen(sid, seq, "input", "response.create", f"e{seq}", 10, True))


def chain_rows(dsn: str) -> dict[str, list[tuple[int, str, str]]]:
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT chain_id, seq, prev_hash, hash FROM audit_records ORDER BY chain_id, seq")
        out: dict[str, list[tuple[int, str, str]]] = {}
        for chain, seq, prev, digest in found.fetchall():
            out.setdefault(chain, []).append((seq, prev, digest))
    return out


def admin_dsn(pg: PostgresServer, dsn: str) -> str:
    return pg.dsn(dsn.rsplit("/", 1)[1], user=ADMIN, password=ADMIN_PASSWORD)


def verify(dsn: str) -> list[tuple[str | None, object]]:
    source = PostgresSource(dsn)
    try:
        return source.verify({})  # type: ignore[return-value]
    finally:
        source.close()


async def test_two_writers_keep_one_chain_each_and_both_verify(pg_dsn: str) -> None:
    async with trio.open_nursery() as nursery:  # at the same time, into the same table
        nursery.start_soon(write_session, pg_dsn, "gw-a", "s1", 30)
        nursery.start_soon(write_session, pg_dsn, "gw-b", "s2", 20)
    chains = chain_rows(pg_dsn)
    assert sorted(chains) == ["gw-a", "gw-b"]
    assert [seq for seq, _, _ in chains["gw-a"]] == list(range(1, 32))
    assert [seq for seq, _, _ in chains["gw-b"]] == list(range(1, 22))
    for name, rows in chains.items():
        assert rows[0][1] == chain_genesis(name)  # the chain's name is hashed into its start
        assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    results = dict(verify(pg_dsn))
    assert results["gw-a"].ok and results["gw-a"].count == 31  # type: ignore[attr-defined]
    assert results["gw-b"].ok and results["gw-b"].head_hash == chains["gw-b"][-1][2]  # type: ignore[attr-defined]

    # A restarted instance continues its chain.
    await write_session(pg_dsn, "gw-a", "s3", 1)
    assert [seq for seq, _, _ in chain_rows(pg_dsn)["gw-a"]][-2:] == [32, 33]


async def test_one_chain_shared_by_mistake_is_still_one_chain(pg_dsn: str) -> None:
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(write_session, pg_dsn, "same", f"s{i}", 25)
    (rows,) = chain_rows(pg_dsn).values()
    assert [seq for seq, _, _ in rows] == list(range(1, 79))
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET data = '{}' WHERE seq = 2",
        "DELETE FROM audit_records WHERE seq = 2",
        "TRUNCATE audit_records",
        "DELETE FROM audit_chains",
    ],
)
async def test_triggers_refuse_changes_even_by_the_owner(pg_dsn: str, statement: str) -> None:
    await write_session(pg_dsn, "gw-a", "s1", 3)
    with psycopg.connect(pg_dsn, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        conn.execute(statement)  # type: ignore[arg-type]
    assert "immutable" in str(info.value)
    assert len(chain_rows(pg_dsn)["gw-a"]) == 4


async def test_immutable_false_removes_the_triggers_and_true_restores_them(pg_dsn: str) -> None:
    await write_session(pg_dsn, "gw-a", "s1", 1, immutable=False)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("UPDATE audit_records SET kind = kind WHERE seq = 1")  # allowed now
    await write_session(pg_dsn, "gw-a", "s2", 1)
    with psycopg.connect(pg_dsn, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE audit_records SET kind = kind WHERE seq = 1")


async def test_a_row_edited_by_a_superuser_is_found_with_its_chain_and_seq(
    pg_dsn: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    await write_session(pg_dsn, "gw-a", "s1", 5)
    await write_session(pg_dsn, "gw-b", "s2", 5)
    with psycopg.connect(admin_dsn(postgres_server, pg_dsn), autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_records DISABLE TRIGGER USER")
        conn.execute(
            "UPDATE audit_records SET data = replace(data, '\"size\":10', '\"size\":99')"
            " WHERE chain_id = 'gw-b' AND seq = 4"
        )
        conn.execute("ALTER TABLE audit_records ENABLE TRIGGER USER")
    results = dict(verify(pg_dsn))
    assert results["gw-a"].ok  # type: ignore[attr-defined]
    bad = results["gw-b"]
    assert not bad.ok and bad.bad_seq == 4 and "modified" in bad.problem  # type: ignore[attr-defined]

    # The CLI, reading store.* from the gateway's config (the DSN's password from the environment).
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"store:\n  backend: postgres\n  postgres_dsn: ${{KT_TEST_DSN}}\ngateway:\n  state_dir: {tmp_path / 'state'}\n",
        encoding="utf-8",
    )
    env = {"KT_TEST_DSN": pg_dsn, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "kt_trio", "audit", "verify", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert "chain gw-b BROKEN at record 4" in out.stdout and "chain gw-a OK: 6 records" in out.stdout
    assert GATEWAY_PASSWORD not in out.stdout + out.stderr


async def test_retention_removes_each_chains_prefix_and_leaves_a_checkpoint(pg_dsn: str) -> None:
    now = [T0]
    settings = AuditLoggerSettings(retention_days=1)
    for chain in ("gw-a", "gw-b"):
        now[0] = T0
        async with open_audit_log(
            "unused", settings, backend=store(pg_dsn), chain=chain, clock=lambda: now[0]
        ) as audit:
            for day in range(3):
                now[0] = T0 + day * DAY
                await audit.write("s", MessageSeen("s", day, "input", "x", None, 1, True))
    async with open_audit_log("unused", settings, backend=store(pg_dsn), chain="gw-a", clock=lambda: now[0]) as audit:
        removed = await audit.run_retention(now=T0 + 2 * DAY + 1)
    assert removed == 4  # days 0 and 1 of both chains (the triggers stayed in force)
    chains = chain_rows(pg_dsn)
    assert [seq for seq, _, _ in chains["gw-a"]] == [3, 4] and [seq for seq, _, _ in chains["gw-b"]] == [3, 4]
    results = dict(verify(pg_dsn))
    assert all(r.ok for r in results.values())  # type: ignore[attr-defined]
    with psycopg.connect(pg_dsn) as conn:
        (data,) = conn.execute("SELECT data FROM audit_records WHERE chain_id='gw-b' AND kind='checkpoint'").fetchone()  # type: ignore[misc]
    assert json.loads(data)["removed_through_seq"] == 2


def test_connection_errors_never_show_the_password(postgres_server: PostgresServer) -> None:
    wrong = postgres_server.dsn("postgres", user="kt_gateway", password="not-" + GATEWAY_PASSWORD)
    with pytest.raises(PostgresError) as info:
        connect(wrong, application_name="test")
    assert GATEWAY_PASSWORD not in str(info.value) and "kt_gateway@127.0.0.1" in str(info.value)
    refused = f"postgresql://kt_gateway:{GATEWAY_PASSWORD}@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(PostgresError) as info:
        connect(refused, application_name="test")
    assert GATEWAY_PASSWORD not in str(info.value)
