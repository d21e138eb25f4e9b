"""The one OpenAI-shaped HTTP error body, `{"error": {"type", "code", "message", "param"}}`, and
the translation of a provider's error answer into it (pure).

Every HTTP refusal of the gateway (handshake refusals, chat, Responses, embeddings, passthrough,
the admin and key checks) is built here, so the four keys are always there: the openai SDK reads
`error.code` and `error.param` into its exception, and clients test `param is None`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

Origin = Literal["gateway", "upstream"]


def error_object(err_type: str, code: str | None, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"type": err_type, "code": code, "message": message, "param": param}}


def error_body(err_type: str, code: str | None, message: str, param: str | None = None) -> bytes:
    """The body of an HTTP error answer (compact JSON, UTF-8)."""
    return json.dumps(error_object(err_type, code, message, param), separators=(",", ":"), ensure_ascii=False).encode()


class HttpRefusal(Exception):
    """An answer to give the client instead of the one it asked for: status, body, headers, and
    who answered and why (for the audit record's `closed_by` and `close_reason`)."""

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        origin: Origin = "gateway",
        reason: str = "upstream_error",
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []
        self.origin = origin
        self.reason = reason


def refusal(status: int, err_type: str, code: str, message: str, **headers: str) -> HttpRefusal:
    """A refusal of the gateway's own; `headers` as `retry_after="3"` (underscores become dashes)."""
    encoded = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return HttpRefusal(status, error_body(err_type, code, message), encoded, reason=code)


def policy_refusal(policy: str, reason: str) -> HttpRefusal:
    """DESIGN.md: a request a policy blocked is 400 `policy_violation` naming the policy."""
    r = refusal(400, "policy_violation", policy, reason)
    r.reason = f"policy_violation: {policy}"
    return r


# Anthropic error type -> (OpenAI error type, HTTP status the client sees).
_ANTHROPIC_ERRORS = {
    "invalid_request_error": ("invalid_request_error", 400),
    "authentication_error": ("upstream_error", 502),  # the gateway's secret, not the client's key
    "permission_error": ("upstream_error", 502),
    "not_found_error": ("invalid_request_error", 404),
    "request_too_large": ("invalid_request_error", 413),
    "rate_limit_error": ("rate_limit_exceeded", 429),
    "api_error": ("upstream_error", 502),
    "overloaded_error": ("upstream_unavailable", 503),
}


def anthropic_error(status: int, body: Any) -> tuple[int, bytes, str, str, str]:
    """An Anthropic error response (or stream `error` event) as (HTTP status, OpenAI error body,
    type, code, message). 429 stays 429; `overloaded_error` (HTTP 529) becomes 503."""
    err = body.get("error") if isinstance(body, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    if not isinstance(kind, str):
        kind = "overloaded_error" if status == 529 else "rate_limit_error" if status == 429 else "api_error"
    oa_type, mapped = _ANTHROPIC_ERRORS.get(kind, ("upstream_error", 502))
    if status == 529:
        mapped = 503
    elif status == 429:
        mapped = 429
    text = message if isinstance(message, str) and message else f"upstream error (HTTP {status})"
    return mapped, error_body(oa_type, kind, text), oa_type, kind, text


def upstream_refusal(provider: str, status: int, raw: bytes, retry_after: str | None) -> HttpRefusal:
    """A provider's error answer as the client sees it: Anthropic's translated; an OpenAI-shaped
    one passed through as it came; anything else (a proxy's HTML page) replaced by ours."""
    headers = [(b"retry-after", retry_after.encode())] if retry_after else []
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if provider == "anthropic":
        mapped, body, *_ = anthropic_error(status, parsed)
        return HttpRefusal(mapped, body, headers, "upstream")
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return HttpRefusal(status, raw, headers, "upstream")
    body = error_body("upstream_error", f"http_{status}", "upstream error")
    return HttpRefusal(502 if status >= 500 else status, body, headers, "upstream")
