"""The command line's side of the admin API: `kt_trio sessions ...`, `kt_trio keys ... --url`
(and `kt_trio reload`) call a running gateway with an admin key.

The key comes from `--key` or, better (a command line is visible to other users in `ps`), the
environment variable `KT_TRIO_ADMIN_KEY`. It is sent as `Authorization: Bearer` and never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import httpx

KEY_ENV = "KT_TRIO_ADMIN_KEY"
TIMEOUT_SECS = 30.0
# Exit codes, as `kt_trio keys`: 0 done, 1 the gateway refused, 2 a usage or connection problem.
EXIT_REFUSED = 1
EXIT_USAGE = 2


class AdminClientError(Exception):
    """The call failed: `exit_code` says whether the gateway refused it (1) or was not reached (2)."""

    def __init__(self, message: str, exit_code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status


def admin_parser(url_required: bool = True) -> argparse.ArgumentParser:
    """A parent parser with `--url` and `--key`."""
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--url",
        required=url_required,
        help="the gateway, e.g. http://127.0.0.1:8080 (its admin API)"
        if url_required
        else "act through a running gateway's admin API instead of the local key store",
    )
    # dest: `keys revoke` has a positional `key` (the key to revoke).
    remote.add_argument(
        "--key", dest="admin_key", help=f"an admin key (default: ${KEY_ENV}; prefer the variable: argv is visible)"
    )
    return remote


class AdminClient:
    def __init__(self, url: str, key: str, *, timeout: float = TIMEOUT_SECS) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AdminClient:
        key = args.admin_key or os.environ.get(KEY_ENV)
        if not key:
            raise AdminClientError(f"an admin key is needed: --key KEY or ${KEY_ENV}", EXIT_USAGE)
        if not args.url.startswith(("http://", "https://")):
            raise AdminClientError(f"--url must start with http:// or https://, got {args.url!r}", EXIT_USAGE)
        return cls(args.url, key)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Any:
        """The JSON answer of one admin request; `AdminClientError` with the gateway's message."""
        try:
            resp = self._http.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise AdminClientError(f"cannot reach the gateway: {exc}", EXIT_USAGE) from None
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        if resp.is_success:
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        raise AdminClientError(
            f"HTTP {resp.status_code}: {message or resp.reason_phrase}", EXIT_REFUSED, resp.status_code
        )


def run(command: str, args: argparse.Namespace, action: Any) -> int:
    """Runs `action(client)` (printing is its job) and turns failures into a message and an exit code."""
    try:
        with AdminClient.from_args(args) as client:
            action(client)
    except AdminClientError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
