"""The ASGI app hypercorn serves behind the front door: every non-WebSocket HTTP request.

Health, readiness and `/metrics`; `/v1/chat/completions` and `/v1/models` go to `kt_trio.chat`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from kt_trio.chat.app import ChatApp

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class HttpApp:
    def __init__(
        self,
        *,
        is_ready: Callable[[], bool],
        metrics: Callable[[], tuple[bytes, str]],
        chat: ChatApp | None = None,
    ) -> None:
        self._is_ready = is_ready
        self._metrics = metrics
        self._chat = chat

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # The front door drives hypercorn per connection, without a lifespan; answer anyway.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            # WebSocket upgrades are the front door's; one reaching here is for an unknown path.
            await send({"type": "websocket.close", "code": 1008})
            return
        if self._chat is not None and self._chat.handles(scope):
            await self._chat(scope, receive, send)
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
            await _json(
                send,
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "not_found",
                        "message": f"no route for {method} {path}",
                    }
                },
            )


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
