"""The `external-guardrail` policy's HTTP side (DESIGN.md "Guardrail hook").

The gateway POSTs `{"text", "direction", "route", "model", "session_id", "key_name", "team"}` to
`url` with `headers`, and the service answers `{"action": "allow" | "block" | "redact", "reason",
"redactions": [{"start", "end", "kind"}]}`. One `Guardrail` per loaded config: one httpx
`AsyncClient` (a connection pool of `max_concurrency` connections, kept alive between texts;
httpx runs on trio through anyio) shared by every session and HTTP request.

Bounds: at most `max_concurrency` texts are in flight; one more waits for a slot, and the wait
counts against the same `timeout_ms` as the request itself (so nothing waits unbounded and a
slow service cannot pile up work). Past the timeout, on a transport error, a non-2xx status or an
answer that is not the contract's JSON (a redaction outside the text, an unknown action),
`on_error` decides: `block` (default) refuses the text, `allow` lets it through. Either way the
decision names the failure, never the text, the URL's secrets or the headers.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

import attrs
import httpx
import trio

from kt_trio.config.schema import ExternalGuardrailSettings

log = logging.getLogger(__name__)

NAME = "external-guardrail"
# Answers larger than this are not the contract's (a few redactions and a reason): refused
# unread rather than buffered.
MAX_ANSWER_BYTES = 256 * 1024
# Redactions one answer may carry: bounds the work of applying them.
MAX_REDACTIONS = 1024

GuardAction = Literal["allow", "block", "redact"]


@attrs.frozen
class Context:
    """Who and where a text comes from: sent beside it so the service can decide per route."""

    route: str
    model: str | None = None
    session_id: str | None = None
    key_name: str | None = None
    team: str | None = None


@attrs.frozen
class GuardVerdict:
    action: GuardAction
    reason: str
    redactions: tuple[tuple[int, int, str], ...] = ()
    failed: bool = False  # the service did not answer as the contract says (`on_error` decided)

    def apply(self, text: str) -> str:
        """`text` with each redaction replaced by `[REDACTED:<KIND>]` (spans checked on receipt)."""
        out: list[str] = []
        last = 0
        for start, end, kind in self.redactions:
            out.append(text[last:start])
            out.append(f"[REDACTED:{kind}]")
            last = end
        out.append(text[last:])
        return "".join(out)


class BadAnswer(ValueError):
    """The service answered, but not as the contract says."""


def parse_answer(body: bytes, text_len: int) -> GuardVerdict:
    """The service's answer as a verdict; `BadAnswer` when it is not the contract's shape."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadAnswer("answer is not JSON") from exc
    if not isinstance(data, dict):
        raise BadAnswer("answer is not a JSON object")
    action = data.get("action")
    if action not in ("allow", "block", "redact"):
        raise BadAnswer("answer has no valid action")
    reason = data.get("reason")
    reason = str(reason)[:200] if reason is not None else ""
    spans: list[tuple[int, int, str]] = []
    if action == "redact":
        raw = data.get("redactions")
        if not isinstance(raw, list) or len(raw) > MAX_REDACTIONS:
            raise BadAnswer("redact answer without a redactions list")
        for r in raw:
            if not isinstance(r, dict):
                raise BadAnswer("a redaction is not an object")
            start, end, kind = r.get("start"), r.get("end"), r.get("kind", "GUARDRAIL")
            if type(start) is not int or type(end) is not int or not 0 <= start < end <= text_len:
                raise BadAnswer("a redaction is outside the text")
            kind = "".join(c for c in str(kind).upper() if c.isalnum() or c == "_")[:32] or "GUARDRAIL"
            spans.append((start, end, kind))
        spans.sort()
        for (_, e1, _), (s2, _, _) in itertools.pairwise(spans):
            if s2 < e1:
                raise BadAnswer("redactions overlap")
    return GuardVerdict(action, reason, tuple(spans))


class Guardrail:
    """Judges whole texts through the service; shared by every session of one config."""

    name = NAME

    def __init__(
        self, settings: ExternalGuardrailSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not settings.url.startswith(("http://", "https://")):
            raise ValueError(f"policy.{NAME}.url: an http:// or https:// URL is required")
        self.settings = settings
        self.directions = frozenset({"input", "output"} if settings.apply_to == "both" else {settings.apply_to})
        self._timeout = settings.timeout_ms / 1000
        self._slots = trio.Semaphore(settings.max_concurrency)
        limits = httpx.Limits(
            max_connections=settings.max_concurrency, max_keepalive_connections=settings.max_concurrency
        )
        self._client = httpx.AsyncClient(
            headers=dict(settings.headers),
            timeout=httpx.Timeout(self._timeout),
            limits=limits,
            transport=transport,
            follow_redirects=False,
        )

    def applies(self, direction: str) -> bool:
        return direction in self.directions

    async def judge(self, text: str, direction: Literal["input", "output"], ctx: Context) -> GuardVerdict:
        """The service's verdict on `text`, or `on_error`'s when it cannot give one in time."""
        payload: Mapping[str, Any] = {
            "text": text,
            "direction": direction,
            "route": ctx.route,
            "model": ctx.model,
            "session_id": ctx.session_id,
            "key_name": ctx.key_name,
            "team": ctx.team,
        }
        failure = ""
        with trio.move_on_after(self._timeout) as scope:
            try:
                async with self._slots:
                    return await self._post(payload, len(text))
            except BadAnswer as exc:
                failure = f"malformed answer ({exc})"
            except httpx.HTTPStatusError as exc:
                failure = f"status {exc.response.status_code}"
            except httpx.TimeoutException:
                failure = "timed out"
            except httpx.HTTPError as exc:
                failure = f"unreachable ({type(exc).__name__})"
        if scope.cancelled_caught:
            failure = f"no answer within {self.settings.timeout_ms} ms"
        log.warning("%s: %s", NAME, failure)
        if self.settings.on_error == "allow":
            return GuardVerdict("allow", f"guardrail {failure}; allowed (on_error: allow)", failed=True)
        return GuardVerdict("block", f"guardrail {failure}", failed=True)

    async def _post(self, payload: Mapping[str, Any], text_len: int) -> GuardVerdict:
        async with self._client.stream("POST", self.settings.url, json=payload) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise BadAnswer("answer too large")
        return parse_answer(bytes(body), text_len)

    async def aclose(self) -> None:
        await self._client.aclose()
