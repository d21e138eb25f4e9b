"""The ASGI app hypercorn serves behind the front door: every non-WebSocket HTTP request.

Health, readiness and `/metrics`; every `/v1/*` request goes to `kt_trio.chat` after the same
key check (scope `chat`; `realtime` for `/v1/realtime/client_secrets`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kt_trio.admin.router import AdminApp
from kt_trio.chat.app import CLIENT_SECRETS_PATH, ChatApp
from kt_trio.chat.asgi_io import respond
from kt_trio.console import handles as console_handles
from kt_trio.console import serve_console
from kt_trio.protocol.azure_paths import AZURE_DEPLOYMENT, PREFIX, azure_route
from kt_trio.providers.errors import error_body
from kt_trio.server.packs import unknown_pack_message
from kt_trio.session.upstream_headers import client_credential

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# check_key(presented key, scope=...) -> (key info, refusal as (status, error type, code, message) or None)
KeyCheck = Callable[..., Awaitable[tuple[Any, tuple[int, str, str, str] | None]]]


class HttpApp:
    def __init__(
        self,
        *,
        is_ready: Callable[[], bool],
        metrics: Callable[[], tuple[bytes, str]],
        chat_for: Callable[[Any], ChatApp | None] | None = None,
        check_key: KeyCheck | None = None,
        admin: AdminApp | None = None,
    ) -> None:
        """`chat_for(key)`: the chat app of the pack serving that key (None: a pack the gateway
        does not serve); `check_key` as `Gateway.check_key`."""
        self._is_ready = is_ready
        self._metrics = metrics
        self._chat_for = chat_for
        self._check_key = check_key
        self._admin = admin  # `/admin/...` and the console's login (kt_trio.admin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # The front door drives hypercorn per connection, without a lifespan; answer anyway.
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            # WebSocket upgrades are the front door's; one reaching here is for an unknown path.
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope.get("path", "")
        if self._admin is not None and self._admin.handles(path):
            await self._admin(scope, receive, send)
            return
        azure = azure_route(path, scope.get("query_string", b"").decode("latin-1")) if path.startswith(PREFIX) else None
        if azure is not None:
            # An Azure client's URL: served by the route it maps to, its deployment picking the target.
            scope = {**scope, "path": azure.path, "raw_path": azure.path.encode(), AZURE_DEPLOYMENT: azure.deployment}
        if self._chat_for is not None and ChatApp.handles(scope):
            key = None
            if self._check_key is not None:
                needs = "realtime" if scope.get("path") == CLIENT_SECRETS_PATH else "chat"
                key, refused = await self._check_key(_presented_key(scope), scope=needs)
                if refused is not None:
                    await respond(send, refused[0], error_body(*refused[1:]))
                    return
            chat = self._chat_for(key)
            if chat is None:
                assert key is not None  # anonymous clients are served by the default pack
                await respond(send, 403, error_body("permission_error", "unknown_pack", unknown_pack_message(key)))
                return
            await chat(scope, receive, send, key=key)
            return
        if console_handles(scope):
            await serve_console(scope, send)
            return
        path = scope["path"]
        method = scope["method"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _json(send, 200, {"status": "ok"})
        elif path == "/readyz" and method in ("GET", "HEAD"):
            ready = self._is_ready()
            await _json(send, 200 if ready else 503, {"status": "ready" if ready else "not ready"})
        elif path == "/metrics" and method in ("GET", "HEAD"):
            body, content_type = self._metrics()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            await respond(send, 404, error_body("invalid_request_error", "not_found", f"no route for {method} {path}"))


def _presented_key(scope: Scope) -> str | None:
    """The key a client sent (`Authorization: Bearer` or `api-key`); never logged or forwarded."""
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    credential = client_credential(headers, ())
    return credential.value if credential is not None else None


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
