"""`python -m kt_trio audit verify|tail|export`: thin commands over `kt_trio.audit.reader`.

Exit codes: 0 success; 1 `verify` found a bad record; 2 no audit log, an unreadable config or a
bad argument. They read with their own read-only connections, so they are safe to run while the
gateway writes.
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

from kt_trio.audit.reader import (
    Row,
    connect_readonly,
    head_seq,
    last_rows,
    parse_time,
    rows_after,
    rows_between,
    verify,
)
from kt_trio.audit.store import db_path
from kt_trio.config.state_dir import resolve_state_dir, state_dir_parser

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
        "--anchor", metavar="SEQ:HASH", help="also check that record SEQ still has HASH (a head noted earlier)"
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


def _open(args: argparse.Namespace) -> sqlite3.Connection | None:
    state_dir = resolve_state_dir(args)
    if state_dir is None:
        return None
    try:
        return connect_readonly(db_path(state_dir))
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return None


def verify_command(args: argparse.Namespace) -> int:
    anchor = None
    if args.anchor:
        seq, _, digest = args.anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            print("audit verify: --anchor must be SEQ:HASH (a seq and a 64-hex-digit hash)", file=sys.stderr)
            return EXIT_USAGE
        anchor = (int(seq), digest.lower())
    state_dir = resolve_state_dir(args)
    if state_dir is None:
        return EXIT_USAGE
    try:
        result = verify(db_path(state_dir), anchor)
    except (FileNotFoundError, sqlite3.Error) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not result.ok:
        print(f"audit log BROKEN at record {result.bad_seq}: {result.problem}")
        return EXIT_BAD
    if result.count == 0:
        print("audit log OK: 0 records")
    else:
        print(
            f"audit log OK: {result.count} records (seq {result.first_seq}..{result.last_seq}); "
            f"head {result.last_seq}:{result.head_hash}"
        )
    return 0


def tail_command(args: argparse.Namespace) -> int:
    conn = _open(args)
    if conn is None:
        return EXIT_USAGE
    try:
        rows = last_rows(conn, max(args.n, 0), args.session)
        _print_rows(rows, sys.stdout)
        if not args.follow:
            return 0
        last = rows[-1].seq if rows else head_seq(conn)
        while True:
            time.sleep(args.interval)
            rows = rows_after(conn, last, args.session)
            while rows:
                _print_rows(rows, sys.stdout)
                last = rows[-1].seq
                rows = rows_after(conn, last, args.session)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return _reader_left()
    finally:
        conn.close()


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
    conn = _open(args)
    if conn is None:
        return EXIT_USAGE
    out: TextIO = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        conn.execute("BEGIN")  # one snapshot: the export is a consistent slice of the chain
        rows = rows_between(conn, since, until)
        if args.format == "csv":
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                writer.writerow([row.seq, row.ts, row.kind, row.session_id or "", row.data, row.prev_hash, row.hash])
        else:
            for row in rows:
                out.write(json.dumps(row.as_dict(), ensure_ascii=False) + "\n")
        out.flush()
    except BrokenPipeError:
        return _reader_left()
    finally:
        conn.close()
        if out is not sys.stdout:
            out.close()
    return 0
