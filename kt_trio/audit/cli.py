"""`python -m kt_trio audit verify|tail|export`: thin commands over `kt_trio.audit.reader`.

Exit codes: 0 success; 1 `verify` found a bad record; 2 no audit log, an unreadable config or a
bad argument. They read with their own read-only connections, so they are safe to run while the
gateway writes. With `--config` naming a gateway whose `store.backend` is `postgres`, they read
the PostgreSQL log: `verify` checks every instance's chain and prints each head.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import sys
import time
from typing import Any, TextIO

from kt_trio.audit.reader import AuditSource, Row, SqliteSource, VerifyResult, parse_time
from kt_trio.audit.store import db_path
from kt_trio.config.state_dir import resolve_store, state_dir_parser

EXIT_BAD = 1
EXIT_USAGE = 2
# How often `tail -f` looks for new records: a bounded sleep between polls, so Ctrl-C is prompt
# and an idle follower costs one indexed query per interval.
FOLLOW_INTERVAL_SECS = 0.5
CSV_COLUMNS = ("seq", "ts", "kind", "session_id", "data", "prev_hash", "hash")


def add_audit_commands(subparsers: Any) -> None:
    """Add `audit verify|tail|export` to the top-level subparsers (called from `kt_trio.cli`)."""
    where = state_dir_parser()

    audit = subparsers.add_parser("audit", help="verify, tail or export the audit log")
    commands = audit.add_subparsers(dest="audit_command", required=True)

    check = commands.add_parser("verify", parents=[where], help="walk the hash chain; exit 1 at the first bad record")
    check.add_argument(
        "--anchor",
        metavar="[CHAIN:]SEQ:HASH",
        action="append",
        default=[],
        help="also check that record SEQ (of CHAIN, in PostgreSQL) still has HASH (a head noted earlier); repeatable",
    )
    check.set_defaults(func=verify_command)

    tail = commands.add_parser("tail", parents=[where], help="print the last records as JSON lines")
    tail.add_argument("-n", type=int, default=20, help="how many records (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records until Ctrl-C")
    tail.add_argument("--session", help="only this session's records")
    tail.add_argument("--interval", type=float, default=FOLLOW_INTERVAL_SECS, help=argparse.SUPPRESS)
    tail.set_defaults(func=tail_command)

    export = commands.add_parser("export", parents=[where], help="write the records of a time range")
    export.add_argument("--since", help="ISO 8601 date or time, inclusive (a time without zone is UTC)")
    export.add_argument("--until", help="ISO 8601 date or time, exclusive; a bare date includes that day")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("-o", "--output", help="write here instead of stdout")
    export.set_defaults(func=export_command)


def _open(args: argparse.Namespace) -> AuditSource | None:
    found = resolve_store(args)
    if found is None:
        return None
    state_dir, store = found
    try:
        if store.backend == "postgres":
            from kt_trio.audit.postgres_reader import PostgresSource  # psycopg only when it is used
            from kt_trio.postgres import PostgresError

            assert store.postgres_dsn is not None  # the loader requires it
            try:
                return PostgresSource(store.postgres_dsn)
            except PostgresError as exc:
                print(f"audit: {exc}", file=sys.stderr)
                return None
        return SqliteSource(db_path(state_dir))
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return None


def _parse_anchor(text: str) -> tuple[str | None, tuple[int, str]] | None:
    """`[CHAIN:]SEQ:HASH` (a chain name may itself hold colons, e.g. host:port)."""
    head, _, digest = text.rpartition(":")
    chain, _, seq = head.rpartition(":")
    if not seq.isdigit() or len(digest) != 64:
        return None
    return (chain if head.count(":") else None), (int(seq), digest.lower())


def verify_command(args: argparse.Namespace) -> int:
    anchors: dict[str | None, tuple[int, str]] = {}
    for text in args.anchor:
        parsed = _parse_anchor(text)
        if parsed is None:
            print("audit verify: --anchor must be [CHAIN:]SEQ:HASH (a seq and a 64-hex-digit hash)", file=sys.stderr)
            return EXIT_USAGE
        anchors[parsed[0]] = parsed[1]
    source = _open(args)
    if source is None:
        return EXIT_USAGE
    try:
        results = source.verify(anchors)
    except (sqlite3.Error, OSError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        source.close()
    if len(results) == 1 and results[0][0] is None:  # SQLite: one chain, the original one-line report
        result = results[0][1]
        if not result.ok:
            print(f"audit log BROKEN at record {result.bad_seq}: {result.problem}")
            return EXIT_BAD
        print(_summary("audit log OK:", result))
        return 0
    broken = [(chain, r) for chain, r in results if not r.ok]
    total = sum(r.count for _, r in results)
    noun = "chain" if len(results) == 1 else "chains"
    if broken:
        print(f"audit log BROKEN: {len(broken)} of {len(results)} {noun}")
    else:
        print(f"audit log OK: {total} records in {len(results)} {noun}")
    for chain, result in results:
        if result.ok:
            print(_summary(f"  chain {chain} OK:", result))
        else:
            print(f"  chain {chain} BROKEN at record {result.bad_seq}: {result.problem}")
    return EXIT_BAD if broken else 0


def _summary(label: str, result: VerifyResult) -> str:
    if result.count == 0:
        return f"{label} 0 records"
    return (
        f"{label} {result.count} records (seq {result.first_seq}..{result.last_seq}); "
        f"head {result.last_seq}:{result.head_hash}"
    )


def tail_command(args: argparse.Namespace) -> int:
    source = _open(args)
    if source is None:
        return EXIT_USAGE
    try:
        rows = source.last_rows(max(args.n, 0), args.session)
        _print_rows(rows, sys.stdout)
        if not args.follow:
            return 0
        heads = source.heads()
        for row in rows:  # follow on from what was printed (in seq order within each chain)
            heads[row.chain] = row.seq
        while True:
            time.sleep(args.interval)
            while rows := source.rows_after(heads, args.session):
                _print_rows(rows, sys.stdout)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return _reader_left()
    finally:
        source.close()


def _reader_left() -> int:
    """`audit tail | head`: the reader left, which is fine. Point stdout at /dev/null so the
    interpreter's final flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def _print_rows(rows: list[Row], out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
    out.flush()  # a follower piped into another program sees each record as it comes


def export_command(args: argparse.Namespace) -> int:
    try:
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until, end_of_day=True) if args.until else None
    except ValueError as exc:
        print(f"audit export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    source = _open(args)
    if source is None:
        return EXIT_USAGE
    out: TextIO = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        rows = source.export(since, until)
        if args.format == "csv":
            chains = not isinstance(source, SqliteSource)  # PostgreSQL: a chain column first
            writer = csv.writer(out)
            writer.writerow(("chain", *CSV_COLUMNS) if chains else CSV_COLUMNS)
            for row in rows:
                cells = [row.seq, row.ts, row.kind, row.session_id or "", row.data, row.prev_hash, row.hash]
                writer.writerow([row.chain, *cells] if chains else cells)
        else:
            for row in rows:
                out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        out.flush()
    except BrokenPipeError:
        return _reader_left()
    finally:
        source.close()
        if out is not sys.stdout:
            out.close()
    return 0
