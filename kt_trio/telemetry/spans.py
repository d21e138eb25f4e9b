"""Where a trace starts: a WebSocket session's span and a governed HTTP request's span
(`POST /v1/chat/completions`, `/v1/responses`, `/v1/embeddings`), each continuing the
client's W3C `traceparent`; with tracing off, a shared no-op context (nothing is built)."""

from __future__ import annotations

from collections.abc import MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from kt_trio.chat.asgi_io import header

if TYPE_CHECKING:
    from kt_trio.telemetry.tracing import Tracing
    from kt_trio.wire.handshake import RequestHead

_NOTHING: AbstractContextManager[None] = nullcontext()


def traced_request(tracing: Tracing | None, scope: MutableMapping[str, Any]) -> AbstractContextManager[None]:
    """The span of one governed HTTP request (an ASGI `scope`)."""
    if tracing is None:
        return _NOTHING
    method, path = str(scope.get("method", "")), str(scope.get("path", ""))
    return tracing.trace(
        f"{method} {path}",
        "http",
        traceparent=header(scope, b"traceparent"),
        tracestate=header(scope, b"tracestate"),
        attributes={"http.request.method": method, "url.path": path},
    )


def traced_session(tracing: Tracing | None, head: RequestHead, route: str) -> AbstractContextManager[None]:
    """The span of one WebSocket session, from before its upstream dial to its end."""
    if tracing is None:
        return _NOTHING
    return tracing.trace(
        f"session {route}",
        "session",
        traceparent=head.header("traceparent"),
        tracestate=head.header("tracestate"),
        attributes={"kt.route": route},
    )
