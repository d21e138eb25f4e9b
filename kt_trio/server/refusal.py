"""How the gateway refuses a WebSocket handshake or a request before anything is served.

A refusal is a plain-HTTP answer with an OpenAI-shaped error body (DESIGN.md), counted by reason
in the metrics and logged once. `HttpRefusal` is the (status, error type, code, message) tuple
that key checks and the audit store's state hand back for the front door to send.
"""

from __future__ import annotations

import logging

import trio

from kt_trio.metrics import Metrics
from kt_trio.reporting import AuditSink
from kt_trio.server.packs import PackRuntime
from kt_trio.wire.handshake import error_body, http_response
from kt_trio.wire.transport import Transport

log = logging.getLogger("kt_trio.gateway")

# (HTTP status, error type, code, message): the same for every route.
HttpRefusal = tuple[int, str, str, str]

# What a client refused because the audit store fails is told to wait (`Retry-After`): the
# writer retries the store every second, so a freed disk is noticed about this soon.
AUDIT_RETRY_AFTER_SECS = 5


async def refuse(
    transport: Transport,
    metrics: Metrics,
    status: int,
    err_type: str,
    code: str,
    message: str,
    *,
    extra_headers: list[tuple[str, str]] | None = None,
) -> None:
    """A plain-HTTP refusal of a handshake (DESIGN.md), counted by reason and logged once."""
    metrics.handshake_rejected(code)
    log.info("handshake refused", extra={"fields": {"status": status, "reason": code, "detail": message}})
    body = error_body(status, err_type, code, message)
    try:
        await transport.send_all(http_response(status, body, extra_headers=extra_headers or ()))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


def audit_refusal(pack: PackRuntime, audit: AuditSink | None) -> HttpRefusal | None:
    """503 `audit_unavailable` for a new session or request of an audited pack while the
    audit store fails: nothing may start that cannot be recorded."""
    if pack.audited and audit is not None and not getattr(audit, "available", True):
        return (503, "server_error", "audit_unavailable", "the audit log is unavailable; retry later")
    return None
