"""Audit store benchmark (issue 16): audit rows/s into SQLite vs PostgreSQL through the real writer.

`python bench/audit.py --stores` runs this. Each case opens the audit log exactly as the gateway
does (`kt_trio.audit.open_audit_log`: the bounded queue, group commit, the hash chain, one writer
thread) on one store and writes `MessageSeen` records from 20 concurrent "sessions":

  batch   each session hands over its records with `write_many` (10 at a time, as a session does
          for a burst); the clock stops when `flush()` returns (everything committed)
  strict  each session `await write(...)`s one record at a time: it returns only after the commit,
          so the rate is what group commit makes of 20 waiters

Stores: SQLite (`<tmp>/audit.db`, WAL) and PostgreSQL (a private server started for the run with
`fsync=on`, or `--postgres-dsn`), through psycopg 3 sync on the writer's thread (COPY per
transaction). Cases run in turn, round by round; the figure is the median of the rounds, [min-max].
After every case the rows are counted and the chain verified (a mismatch fails the run).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kt_trio.audit import open_audit_log
from kt_trio.audit.postgres_reader import PostgresSource
from kt_trio.audit.reader import SqliteSource
from kt_trio.audit.store import db_path
from kt_trio.config import AuditLoggerSettings, Store
from kt_trio.records import MessageSeen

SESSIONS = 20
BURST = 10  # records a session hands over at once in batch mode


def _record(sid: str, seq: int) -> MessageSeen:
    return MessageSeen(sid, seq, "input", "conversation.item.create", f"evt_{seq:08d}", 300, True)


async def run_case(store: Store, state_dir: Path, durability: str, rows: int, chain: str) -> float:
    """Rows/s for `rows` records written by SESSIONS concurrent writers."""
    settings = AuditLoggerSettings(log_all_access=True, durability=durability)  # type: ignore[arg-type]
    per_session = rows // SESSIONS
    async with open_audit_log(state_dir, settings, backend=store, chain=chain) as audit:

        async def session(i: int) -> None:
            sid = f"s{i}"
            if durability == "batch":
                for start in range(0, per_session, BURST):
                    await audit.write_many(sid, [_record(sid, n) for n in range(start, start + BURST)])
            else:
                for n in range(per_session):
                    await audit.write(sid, _record(sid, n))

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(SESSIONS):
                nursery.start_soon(session, i)
        await audit.flush()
        elapsed = time.perf_counter() - start
    return per_session * SESSIONS / elapsed


def check(store: Store, state_dir: Path, expected: dict[str | None, int]) -> None:
    source: Any = (
        PostgresSource(store.postgres_dsn) if store.backend == "postgres" else SqliteSource(db_path(state_dir))
    )
    try:
        results = dict(source.verify({}))
    finally:
        source.close()
    counts = {chain: r.count for chain, r in results.items()}
    if counts != expected or not all(r.ok for r in results.values()):
        raise SystemExit(f"audit check failed: {counts} != {expected} or {results}")


@contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    from tests.postgres_server import GATEWAY, GATEWAY_PASSWORD, find_bindir, private_postgres

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql), or pass --postgres-dsn")
    with private_postgres(bindir, fsync=True) as pg:
        yield pg.dsn(pg.create_database(), user=GATEWAY, password=GATEWAY_PASSWORD)


def main(*, rounds: int, rows: int, postgres_dsn: str | None, as_json: bool) -> dict[str, Any]:
    results: dict[str, list[float]] = {}
    with postgres(postgres_dsn) as dsn, tempfile.TemporaryDirectory(prefix="kt_trio_bench_audit_") as tmp:
        stores = {"sqlite": Store(), "postgres": Store(backend="postgres", postgres_dsn=dsn)}
        expected: dict[str, dict[str | None, int]] = {"sqlite": {None: 0}, "postgres": {}}
        for r in range(rounds):
            for durability in ("batch", "strict"):
                n = rows if durability == "batch" else rows // 5  # strict: a commit per group, slower
                for name, store in stores.items():
                    chain = f"bench-{durability}"
                    rate = trio.run(run_case, store, Path(tmp), durability, n, chain)
                    results.setdefault(f"{name} {durability}", []).append(rate)
                    key = None if name == "sqlite" else chain
                    written = n // SESSIONS * SESSIONS
                    expected[name][key] = expected[name].get(key, 0) + written
                    check(store, Path(tmp), expected[name])
                    if not as_json:
                        print(f"  round {r + 1}: {name:8} {durability:6} {rate:10,.0f} rows/s", flush=True)
    summary = {
        case: {"median": statistics.median(v), "min": min(v), "max": max(v)} for case, v in sorted(results.items())
    }
    return {"rounds": rounds, "rows": rows, "sessions": SESSIONS, "rows_per_s": summary}


def print_table(report: dict[str, Any]) -> None:
    head = f"{report['sessions']} sessions, {report['rounds']} rounds, median [min-max]"
    print(f"\naudit rows/s through the writer ({head})")
    figures = report["rows_per_s"]
    for durability in ("batch", "strict"):
        sqlite, pg = figures[f"sqlite {durability}"], figures[f"postgres {durability}"]
        for name, f in (("sqlite", sqlite), ("postgres", pg)):
            print(f"  {durability:6} {name:8} {f['median']:10,.0f}  [{f['min']:,.0f}-{f['max']:,.0f}]")
        print(f"  {durability:6} postgres/sqlite {pg['median'] / sqlite['median']:.2f}x")
