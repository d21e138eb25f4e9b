"""`serve --workers N`: the admin API answers for every worker, whichever one the kernel picked.

The workers share one port (SO_REUSEPORT), so a request reaches one of them at random. Each
worker also serves its HTTP app on a Unix socket `admin-<pid>.sock` in a directory the supervisor
makes for them (`KT_TRIO_WORKERS_DIR`, mode 0700: only the gateway's own user can connect). The
worker that got an admin request asks its siblings over those sockets, with the admin's own
credentials (each sibling checks them again) and `X-KT-Admin-Local: 1` (answer for yourself only):

- `GET /admin/sessions` merges every worker's rows;
- `DELETE /admin/sessions/{id}` closes the session on whichever worker holds it (that worker
  records the action).

A sibling that does not answer within `ASK_TIMEOUT_SECS` is left out (a worker being restarted);
a socket nobody listens on any more (a worker killed with -9) is removed. Without the variable (one
process) nothing here runs. Separate instances sharing Redis are separate gateways: each answers
for its own sessions.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import trio

log = logging.getLogger("kt_trio.admin")

WORKERS_DIR_ENV = "KT_TRIO_WORKERS_DIR"
LOCAL_HEADER = "x-kt-admin-local"
# A sibling is another process on this machine: it answers in milliseconds, or it is restarting.
ASK_TIMEOUT_SECS = 2.0
# What a forwarded request carries of the admin's: enough to authenticate it again, nothing else.
FORWARDED = ("authorization", "api-key", "cookie", "origin", "host")

ServeHttp = Callable[[trio.abc.Stream, bytes], Awaitable[None]]


class Siblings:
    def __init__(self, directory: str | None = None) -> None:
        self.directory = Path(directory) if directory else None

    @classmethod
    def from_env(cls) -> Siblings:
        return cls(os.environ.get(WORKERS_DIR_ENV))

    @property
    def enabled(self) -> bool:
        return self.directory is not None

    def _own(self) -> Path:
        assert self.directory is not None
        return self.directory / f"admin-{os.getpid()}.sock"

    async def serve(self, serve_http: ServeHttp, scope: trio.CancelScope) -> None:
        """Serves `serve_http` on this worker's socket until `scope` is cancelled (shutdown)."""
        if self.directory is None:
            return
        path = self._own()
        with scope:
            path.unlink(missing_ok=True)
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            await sock.bind(str(path))
            sock.listen(64)
            try:

                async def handle(stream: trio.SocketStream) -> None:
                    await serve_http(stream, b"")

                await trio.serve_listeners(handle, [trio.SocketListener(sock)])
            finally:
                path.unlink(missing_ok=True)

    def _others(self) -> list[Path]:
        if self.directory is None:
            return []
        own = self._own()
        return [p for p in self.directory.glob("admin-*.sock") if p != own]

    async def ask(
        self, method: str, path: str, params: dict[str, str], headers: Sequence[tuple[str, str]]
    ) -> list[tuple[int, Any]]:
        """(status, JSON body) of every sibling that answered the same request for itself."""
        forwarded = {k: v for k, v in headers if k in FORWARDED}
        forwarded[LOCAL_HEADER] = "1"
        answers: list[tuple[int, Any]] = []

        async def one(sock_path: Path) -> None:
            transport = httpx.AsyncHTTPTransport(uds=str(sock_path))
            try:
                async with httpx.AsyncClient(transport=transport, timeout=ASK_TIMEOUT_SECS) as client:
                    resp = await client.request(method, f"http://worker{path}", params=params, headers=forwarded)
                answers.append((resp.status_code, resp.json()))
            except httpx.ConnectError:
                sock_path.unlink(missing_ok=True)  # its worker is gone; a restarted one has a new pid
            except (httpx.HTTPError, ValueError) as exc:
                log.info("admin: worker socket %s did not answer: %s", sock_path.name, exc)

        async with trio.open_nursery() as nursery:
            for sock_path in self._others():
                nursery.start_soon(one, sock_path)
        return answers


def is_local_only(headers: Sequence[tuple[str, str]]) -> bool:
    return any(k == LOCAL_HEADER for k, _ in headers)
