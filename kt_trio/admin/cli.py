"""`kt_trio sessions list|close --url URL [--key KEY]`: a running gateway's live sessions, through
its admin API (`kt_trio.admin.client`).

`list` prints a table (or `--json`, the API's rows); `close ID [--code N] [--reason TEXT]` closes
one, the client getting that code and reason. Exit codes: 0 done; 1 the gateway refused (no such
session, a bad code, a key without `admin`); 2 a usage or connection problem.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from kt_trio.admin.client import AdminClient, admin_parser, run
from kt_trio.keys.shapes import table

SESSION_COLUMNS = (
    ("ID", "id"),
    ("ROUTE", "route"),
    ("MODEL", "model"),
    ("KEY", "key_name"),
    ("TEAM", "team"),
    ("CLIENT", "client_ip"),
    ("STARTED", "started_at"),
    ("IN", "messages_in"),
    ("OUT", "messages_out"),
    ("TOKENS", "total_tokens"),
)


def add_sessions_commands(subparsers: Any) -> None:
    remote = admin_parser()
    sessions = subparsers.add_parser("sessions", help="list or close a running gateway's live sessions")
    commands = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = commands.add_parser("list", parents=[remote], help="the open WebSocket sessions")
    listing.add_argument("--json", action="store_true", help="the admin API's JSON rows instead of a table")
    listing.set_defaults(func=list_command)
    close = commands.add_parser("close", parents=[remote], help="close one session with a code and reason")
    close.add_argument("session_id", metavar="ID")
    close.add_argument("--code", default="1008", help="1000, 1001, 1008, 1011, 1013 or 3000-4999 (default 1008)")
    close.add_argument("--reason", default="", help="at most 123 bytes (default: closed by an administrator)")
    close.set_defaults(func=close_command)


def list_command(args: argparse.Namespace) -> int:
    def show(client: AdminClient) -> None:
        rows = client.call("GET", "/admin/sessions")["data"]
        if args.json:
            print(json.dumps(rows, indent=2))
            return
        for row in rows:
            row["total_tokens"] = row.get("tokens", {}).get("total")
        print(table(rows, SESSION_COLUMNS))

    return run("sessions list", args, show)


def close_command(args: argparse.Namespace) -> int:
    def close(client: AdminClient) -> None:
        params = {"code": args.code, **({"reason": args.reason} if args.reason else {})}
        answer = client.call("DELETE", f"/admin/sessions/{quote(args.session_id, safe='')}", params=params)
        print(f"closed session {answer['id']} with {answer['code']} ({answer['reason']})")

    return run("sessions close", args, close)
