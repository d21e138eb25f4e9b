"""The audit log in a real PostgreSQL: per-writer chains, append-only triggers, retention, verify."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import trio

from kt_trio.audit import open_audit_log
from kt_trio.audit.postgres import PostgresAuditStore
from kt_trio.audit.postgres_reader import PostgresSource
from kt_trio.audit.store import chain_genesis
from kt_trio.config import AuditLoggerSettings, Store
from kt_trio.keys import KeyRing
from kt_trio.keys.store import open_key_store
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


async def test_a_least_privileged_role_runs_once_the_owner_made_the_schema(
    pg_dsn: str, postgres_server: PostgresServer
) -> None:
    await write_session(pg_dsn, "owner", "s0", 1)  # the owner's first start creates the tables
    open_key_store("unused", store(pg_dsn)).close()
    role = "gw_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin_dsn(postgres_server, pg_dsn), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'")  # type: ignore[arg-type]
        for grant in (  # README's grants
            "GRANT SELECT ON kt_trio_schema TO {r}",
            "GRANT SELECT, INSERT ON audit_records, audit_chains TO {r}",
            "GRANT SELECT, INSERT, UPDATE ON gateway_keys, key_daily_usage TO {r}",
        ):
            conn.execute(grant.format(r=role))  # type: ignore[arg-type]
    limited = postgres_server.dsn(pg_dsn.rsplit("/", 1)[1], user=role, password=f"pw-{role}")

    await write_session(limited, "gw-limited", "s1", 3)
    async with await KeyRing.open("unused", store(limited)) as ring:
        keys = open_key_store("unused", store(limited))
        try:
            key, _ = keys.create_key("limited-app", daily_tokens=10)
        finally:
            keys.close()
        assert (await ring.authenticate(key, scope="realtime")).ok
        assert (await ring.record_tokens("limited-app", 10)).exceeded
    results = dict(verify(limited))
    assert results["gw-limited"].count == 4 and all(r.ok for r in results.values())  # type: ignore[attr-defined]
    with psycopg.connect(limited, autocommit=True) as conn:
        for statement in ("UPDATE audit_records SET kind = kind", "ALTER TABLE audit_records DISABLE TRIGGER USER"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)  # type: ignore[arg-type]


async def test_tail_and_export_merge_the_chains_in_time_order(pg_dsn: str, tmp_path: Path) -> None:
    for chain, start in (("gw-a", T0), ("gw-b", T0 + 1)):  # gw-b's records are a second later
        now = [start]
        async with open_audit_log(
            "unused", AuditLoggerSettings(), backend=store(pg_dsn), chain=chain, clock=lambda now=now: now[0]
        ) as audit:
            for i in range(3):
                await audit.write(chain, MessageSeen(chain, i, "input", "x", f"{chain}-{i}", 1, True))
                now[0] += 2
    config = tmp_path / "gateway.yaml"
    config.write_text("store:\n  backend: postgres\n  postgres_dsn: ${KT_TEST_DSN}\n", encoding="utf-8")
    env = {**os.environ, "KT_TEST_DSN": pg_dsn}

    def audit_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kt_trio", "audit", *args, "--config", str(config)],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip

    tail = audit_cli("tail", "-n", "4")
    assert tail.returncode == 0, tail.stderr
    assert [(r["chain"], r["seq"]) for r in map(json.loads, tail.stdout.splitlines())] == [
        ("gw-b", 1), ("gw-a", 2), ("gw-b", 2), ("gw-a", 3), ("gw-b", 3),
    ][1:]  # fmt: skip
    one = audit_cli("tail", "--session", "gw-a")
    assert [json.loads(line)["data"]["event_id"] for line in one.stdout.splitlines()] == ["gw-a-0", "gw-a-1", "gw-a-2"]

    everything = audit_cli("export", "--format", "csv")
    table = list(csv.DictReader(io.StringIO(everything.stdout)))
    assert [(row["chain"], row["seq"]) for row in table] == [
        ("gw-a", "1"), ("gw-b", "1"), ("gw-a", "2"), ("gw-b", "2"), ("gw-a", "3"), ("gw-b", "3"),
    ]  # fmt: skip
    window = audit_cli("export", "--since", "2027-01-15T08:00:01Z", "--until", "2027-01-15T08:00:04Z")
    assert [json.loads(line)["data"]["event_id"] for line in window.stdout.splitlines()] == [
        "gw-b-0",
        "gw-a-1",
        "gw-b-1",
    ]


def test_the_store_reconnects_after_the_database_dropped_its_connection(
    pg_dsn: str, postgres_server: PostgresServer
) -> None:
    audit_store = PostgresAuditStore.open(pg_dsn, chain="gw-a", immutable=True, strict=False, include_content=False)
    try:
        entry = ("2027-01-15T08:00:00.000000Z", "s1", MessageSeen("s1", 0, "input", "x", None, 1, True))
        assert audit_store.append([entry]) == 1
        with psycopg.connect(admin_dsn(postgres_server, pg_dsn), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kt_trio audit gw-a'"
            )
        with pytest.raises(psycopg.OperationalError):
            audit_store.append([entry])  # the writer reports this one (and keeps the record queued or failed)
        assert audit_store.append([entry]) == 2  # a new connection, the same chain
    finally:
        audit_store.close()
    assert all(r.ok for r in dict(verify(pg_dsn)).values())  # type: ignore[attr-defined]
