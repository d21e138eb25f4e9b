"""`python -m kt_trio keys create|list|revoke`: thin commands over `kt_trio.keys.store`.

`create` prints the new key alone on stdout (so `KEY=$(python -m kt_trio keys create --name x)`
works) and a note on stderr; it is never shown again. `list` shows everything but the key.
Changes are committed at once; a running gateway sees them at its next handshake. With
`--config` naming a gateway whose `store.backend` is `postgres`, they act on the PostgreSQL key
tables that every instance of that gateway shares.

Exit codes: 0 success; 1 the key operation was refused (duplicate name, no such key); 2 a bad
argument or an unreadable config or database.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sqlite3
import sys
import time
from datetime import UTC, datetime
from typing import Any

from kt_trio.config.state_dir import resolve_store, state_dir_parser
from kt_trio.keys.store import (
    DEFAULT_SCOPES,
    SCOPES,
    KeyRecord,
    KeyStore,
    KeyStoreError,
    db_path,
    open_key_store,
    parse_scopes,
)

EXIT_REFUSED = 1
EXIT_USAGE = 2
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"(\d+)([smhdw])")


def add_keys_commands(subparsers: Any) -> None:
    """Add `keys create|list|revoke` to the top-level subparsers (called from `kt_trio.cli`), and
    the same commands under Keeptrusts' name `gateway-key` (`--configuration-id` is `--pack`).
    Each command's options live on one parent parser, so both names always take the same ones."""
    where = state_dir_parser()

    create_args = argparse.ArgumentParser(add_help=False)
    create_args.add_argument("--name", required=True, help="a unique name (shown in lists, logs, audit, metrics)")
    create_args.add_argument(
        "--pack",
        "--configuration-id",
        dest="pack",
        help="bind the key to this policy pack (default: the gateway's first pack)",
    )
    create_args.add_argument("--team", help="the team its usage is attributed to")
    create_args.add_argument("--expires-in", metavar="DURATION", help="e.g. 90d, 12h, 2w (default: never)")
    create_args.add_argument(
        "--scopes",
        default=",".join(DEFAULT_SCOPES),
        help=f"comma-separated, from {','.join(SCOPES)} (default {','.join(DEFAULT_SCOPES)})",
    )
    create_args.add_argument("--max-sessions", type=_positive_int, metavar="N", help="concurrent sessions")
    create_args.add_argument("--messages-per-minute", type=_positive_int, metavar="N", help="across all its sessions")
    create_args.add_argument("--daily-tokens", type=_positive_int, metavar="N", help="token budget per UTC day")
    create_args.add_argument(
        "--daily-usd", type=_positive_usd, metavar="X", help="spend per UTC day in US dollars (at the price table)"
    )
    create_args.add_argument("--models", metavar="M1,M2", help="the only models the key may use (default: any)")

    list_args = argparse.ArgumentParser(add_help=False)
    list_args.add_argument("--json", action="store_true", help="one JSON array instead of a table")

    revoke_args = argparse.ArgumentParser(add_help=False)
    revoke_args.add_argument("key", metavar="NAME|PREFIX")
    revoke_args.add_argument("--terminate", action="store_true", help="also close its live sessions (1008 key revoked)")

    for name, help_text in (
        ("keys", "create, list or revoke gateway keys"),
        ("gateway-key", "Keeptrusts' name for `keys`: gateway-key create|list|revoke"),
    ):
        keys = subparsers.add_parser(name, help=help_text)
        commands = keys.add_subparsers(dest="keys_command", required=True)
        create = commands.add_parser("create", parents=[where, create_args], help="make a key and print it (once)")
        create.set_defaults(func=create_command)
        listing = commands.add_parser("list", parents=[where, list_args], help="show keys (never the key itself)")
        listing.set_defaults(func=list_command)
        revoke = commands.add_parser("revoke", parents=[where, revoke_args], help="revoke a key by name or prefix")
        revoke.set_defaults(func=revoke_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_usd(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of dollars: {text!r}") from None
    if not 0 < value < math.inf:  # NaN and inf too: a budget must be a real amount
        raise argparse.ArgumentTypeError(f"must be a number of dollars greater than 0, got {text!r}")
    return value


def parse_duration(text: str) -> float:
    """`90d`, `12h`, `1w2d`, `30m`, `3600s` (or bare seconds) -> seconds."""
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _DURATION_RE.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"bad duration {text!r}: use a number and a unit, e.g. 90d, 12h, 30m")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return float(seconds)


def _open(args: argparse.Namespace) -> KeyStore | None:
    found = resolve_store(args)
    if found is None:
        return None
    state_dir, store = found
    if store.backend == "postgres":
        from kt_trio.postgres import PostgresError

        try:
            return open_key_store(state_dir, store)
        except PostgresError as exc:  # its message names the server, never the password
            print(f"keys: {exc}", file=sys.stderr)
            return None
    try:
        return open_key_store(state_dir, store)
    except (OSError, sqlite3.Error) as exc:
        print(f"keys: cannot open {db_path(state_dir)}: {exc}", file=sys.stderr)
        return None


def create_command(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        scopes = parse_scopes(args.scopes)
        expires_at = now + parse_duration(args.expires_in) if args.expires_in else None
    except ValueError as exc:
        print(f"keys create: {exc}", file=sys.stderr)
        return EXIT_USAGE
    store = _open(args)
    if store is None:
        return EXIT_USAGE
    try:
        key, record = store.create_key(
            args.name,
            pack=args.pack,
            team=args.team,
            scopes=scopes,
            expires_at=expires_at,
            max_sessions=args.max_sessions,
            messages_per_minute=args.messages_per_minute,
            daily_tokens=args.daily_tokens,
            now=now,
            models=args.models,
            daily_usd=args.daily_usd,
        )
    except KeyStoreError as exc:
        print(f"keys create: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.close()
    print(key)
    sys.stdout.flush()
    expiry = _when(record.expires_at) if record.expires_at is not None else "never"
    print(
        f"created key {record.name!r} (prefix {record.prefix}, scopes {','.join(record.scopes)}, expires {expiry}).\n"
        "Store it now: it is not shown again, and only its hash is kept.",
        file=sys.stderr,
    )
    return 0


def list_command(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return EXIT_USAGE
    try:
        records = store.list_keys()
    finally:
        store.close()
    now = time.time()
    if args.json:
        print(json.dumps([_as_json(r, now) for r in records], indent=2))
        return 0
    header = ("NAME", "PREFIX", "PACK", "TEAM", "SCOPES", "EXPIRES", "LAST USED", "STATE")
    rows = [header] + [
        (
            r.name,
            r.prefix,
            r.pack or "-",
            r.team or "-",
            ",".join(r.scopes),
            _when(r.expires_at) if r.expires_at is not None else "never",
            _when(r.last_used_at) if r.last_used_at is not None else "never",
            r.state(now),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    store = _open(args)
    if store is None:
        return EXIT_USAGE
    try:
        record = store.revoke(args.key, terminate=args.terminate)
    except KeyStoreError as exc:
        print(f"keys revoke: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        store.close()
    note = "; its live sessions will be closed" if record.terminate else ""
    print(f"revoked key {record.name!r} ({record.prefix}){note}")
    return 0


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_json(record: KeyRecord, now: float) -> dict[str, Any]:
    return {
        "name": record.name,
        "prefix": record.prefix,
        "pack": record.pack,
        "team": record.team,
        "scopes": list(record.scopes),
        "expires_at": _when(record.expires_at) if record.expires_at is not None else None,
        "max_sessions": record.max_sessions,
        "messages_per_minute": record.messages_per_minute,
        "daily_tokens": record.daily_tokens,
        "daily_usd": record.daily_usd,
        "models": list(record.models) if record.models is not None else None,
        "created_at": _when(record.created_at),
        "last_used_at": _when(record.last_used_at) if record.last_used_at is not None else None,
        "revoked_at": _when(record.revoked_at) if record.revoked_at is not None else None,
        "state": record.state(now),
    }
