"""Small ASGI helpers the HTTP front doors share: reading a bounded body, answering JSON,
noticing a client that left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its request body was read whole."""


async def watch_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    """Cancels `scope` when the client goes away, so an upstream request stops at once."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def shield_last_body(send: Send) -> Send:
    """`send`, with the last body message shielded from cancellation.

    hypercorn reports `http.disconnect` as soon as a response is complete, and it restarts the
    connection's keep-alive idle timer inside that last `send`. A `watch_disconnect` cancelling
    us there aborts the restart: the connection then never counts as idle, and a gateway
    shutdown waits out `shutdown_timeout_secs` for it instead of closing it at once. The write
    itself is already shielded by hypercorn, so this adds no new way to hang.
    """

    async def send_shielding_the_end(message: MutableMapping[str, Any]) -> None:
        if message.get("type") == "http.response.body" and not message.get("more_body", False):
            with trio.CancelScope(shield=True):
                await send(message)
        else:
            await send(message)

    return send_shielding_the_end


def header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return None


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A whole JSON answer."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
