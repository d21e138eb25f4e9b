"""`python -m kt_trio keys create|list|revoke`: thin commands over `kt_trio.keys.store`.

`create` prints the new key alone on stdout (so `KEY=$(python -m kt_trio keys create --name x)`
works) and a note on stderr; it is never shown again. `list` shows everything but the key.
Changes are committed at once; a running gateway sees them at its next handshake. With
`--config` naming a gateway whose `store.backend` is `postgres`, they act on the PostgreSQL key
tables that every instance of that gateway shares.

With `--url URL` (and an admin key: `--key` or `$KT_TRIO_ADMIN_KEY`) the same commands act through
a running gateway's admin API instead (`POST|GET /admin/keys`, `DELETE /admin/keys/{name}`), for a
gateway whose store is not on this machine; output is the same.

Exit codes: 0 success; 1 the key operation was refused (duplicate name, no such key); 2 a bad
argument or an unreadable config or database (or an unreachable gateway).
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from kt_trio.admin.client import AdminClient, admin_parser, run
from kt_trio.config.state_dir import resolve_store, state_dir_parser
from kt_trio.keys.shapes import parse_duration, record_json, table
from kt_trio.keys.store import (
    DEFAULT_SCOPES,
    SCOPES,
    KeyStore,
    KeyStoreError,
    db_path,
    open_key_store,
    parse_scopes,
)

EXIT_REFUSED = 1
EXIT_USAGE = 2


def add_keys_commands(subparsers: Any) -> None:
    """Add `keys create|list|revoke` to the top-level subparsers (called from `kt_trio.cli`), and
    the same commands under Keeptrusts' name `gateway-key` (`--configuration-id` is `--pack`).
    Each command's options live on one parent parser, so both names always take the same ones."""
    where = state_dir_parser()
    remote = admin_parser(url_required=False)

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
        create = commands.add_parser(
            "create", parents=[where, remote, create_args], help="make a key and print it (once)"
        )
        create.set_defaults(func=create_command)
        listing = commands.add_parser(
            "list", parents=[where, remote, list_args], help="show keys (never the key itself)"
        )
        listing.set_defaults(func=list_command)
        revoke = commands.add_parser(
            "revoke", parents=[where, remote, revoke_args], help="revoke a key by name or prefix"
        )
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


def _remote(args: argparse.Namespace, command: str, action: Callable[[AdminClient], None]) -> int | None:
    """With `--url`: runs `action` against the gateway's admin API and returns the exit code;
    without: None (the command uses the store here)."""
    if not args.url:
        return None
    if args.state_dir or args.config:
        print(f"{command}: --url acts through a gateway's admin API; drop --state-dir/--config", file=sys.stderr)
        return EXIT_USAGE
    return run(command, args, action)


def create_command(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        scopes = parse_scopes(args.scopes)
        expires_at = now + parse_duration(args.expires_in) if args.expires_in else None
    except ValueError as exc:
        print(f"keys create: {exc}", file=sys.stderr)
        return EXIT_USAGE
    remote = _remote(args, "keys create", lambda client: _create_remote(client, args, scopes))
    if remote is not None:
        return remote
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
    _print_created(key, record_json(record, now))
    return 0


def _print_created(key: str, row: dict[str, Any]) -> None:
    """The key alone on stdout (for `KEY=$(...)`), what it is on stderr."""
    print(key)
    sys.stdout.flush()
    print(
        f"created key {row['name']!r} (prefix {row['prefix']}, scopes {','.join(row['scopes'])},"
        f" expires {row['expires_at'] or 'never'}).\n"
        "Store it now: it is not shown again, and only its hash is kept.",
        file=sys.stderr,
    )


def _create_remote(client: AdminClient, args: argparse.Namespace, scopes: tuple[str, ...]) -> None:
    body: dict[str, Any] = {"name": args.name, "scopes": list(scopes)}
    for field in ("pack", "team", "expires_in", "max_sessions", "messages_per_minute", "daily_tokens", "daily_usd"):
        value = getattr(args, field)
        if value is not None:
            body[field] = value
    if args.models is not None:
        body["models"] = args.models.split(",")
    answer = client.call("POST", "/admin/keys", body=body)
    _print_created(answer.pop("key"), answer)


def list_command(args: argparse.Namespace) -> int:
    remote = _remote(
        args, "keys list", lambda client: _print_keys(client.call("GET", "/admin/keys")["data"], args.json)
    )
    if remote is not None:
        return remote
    store = _open(args)
    if store is None:
        return EXIT_USAGE
    try:
        records = store.list_keys()
    finally:
        store.close()
    now = time.time()
    _print_keys([record_json(r, now) for r in records], args.json)
    return 0


def _revoke_remote(client: AdminClient, args: argparse.Namespace) -> None:
    params = {"terminate": "true" if args.terminate else "false"}
    row = client.call("DELETE", f"/admin/keys/{quote(args.key, safe='')}", params=params)
    note = f"; its live sessions are closed ({row['sessions_closed']} on that gateway)" if args.terminate else ""
    print(f"revoked key {row['name']!r} ({row['prefix']}){note}")


def _print_keys(rows: list[dict[str, Any]], as_json: bool) -> None:
    print(json.dumps(rows, indent=2) if as_json else table(rows))


def revoke_command(args: argparse.Namespace) -> int:
    remote = _remote(args, "keys revoke", lambda client: _revoke_remote(client, args))
    if remote is not None:
        return remote
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
    if record.terminate and getattr(args, "config", None):
        from kt_trio.state.announce import announce_revoked  # state.backend: redis tells every instance now

        problem = announce_revoked(args.config, [record.name])
        if problem is not None:
            print(f"keys revoke: {problem}; instances close its sessions at their next key poll", file=sys.stderr)
    return 0
