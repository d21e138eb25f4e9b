"""`kt_trio reload --url URL --key KEY`: ask a running gateway to reload its config files.

It calls `POST /admin/reload` (an admin key) and prints what the gateway answered. Exit status:
0 reloaded (settings that need a restart are listed on stderr), 2 rejected (every error as
`FILE:LINE:COL: path: message` on stderr; the gateway runs on with its old config), 1 when the
gateway could not be asked (unreachable, refused the key, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

EXIT_RELOADED = 0
EXIT_FAILED = 1
EXIT_REJECTED = 2
# The key may come from the environment, so it stays out of shell history and `ps`.
KEY_ENV = "KT_TRIO_ADMIN_KEY"


def add_reload_command(sub: Any) -> None:
    reload = sub.add_parser("reload", help="reload a running gateway's config files (POST /admin/reload)")
    reload.add_argument("--url", required=True, help="the gateway's base URL, e.g. http://127.0.0.1:41002")
    reload.add_argument("--key", help=f"an admin gateway key (default: ${KEY_ENV})")
    reload.add_argument("--timeout", type=float, default=30.0)
    reload.set_defaults(func=_reload)


def _reload(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get(KEY_ENV)
    if not key:
        print(f"reload: an admin key is needed (--key or ${KEY_ENV})", file=sys.stderr)
        return EXIT_FAILED
    url = args.url.rstrip("/") + "/admin/reload"
    try:
        resp = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=args.timeout, trust_env=False)
    except httpx.HTTPError as exc:
        print(f"reload: cannot reach {url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    body = _json(resp)
    status = body.get("status") if isinstance(body, dict) else None
    if status == "reloaded":
        print("reloaded")
        for setting in body.get("restart_required", []):
            print(f"warning: {setting} needs a restart to change; its old value is kept", file=sys.stderr)
        return EXIT_RELOADED
    if status == "rejected":
        for error in body.get("errors", []):
            print(error, file=sys.stderr)
        print("rejected: the gateway runs on with its old config", file=sys.stderr)
        return EXIT_REJECTED
    message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    print(f"reload: {url} answered {resp.status_code}: {message or resp.text[:200]}", file=sys.stderr)
    return EXIT_FAILED


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
