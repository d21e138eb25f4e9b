"""One chat request as audit, events, metrics and budgets see it: a session of one message.

The records are the sessions' own vocabulary (`kt_trio.records`), so the audit log, the event
stream and the metrics need nothing new: `SessionStarted` when the request is accepted, its
`PolicyDecision`s, `MessageSeen` for the request and the response (with
`audit-logger.log_all_access`), `ResponseUsage`, `BudgetAlert`s of the key's daily budget, and
a `SessionSummary` whose `close_code` is the HTTP status the client got (499 when the client went
away first, as nginx logs it) and whose `close_reason` says why.

Through its `kt_trio.reporting.ReportingPoint`, as a session's, every record goes to the reporter at once
(events, metrics) and, when the audit log is on, into a pending list handed to the log with an
awaited `write_many` before the next bytes leave: before the request goes upstream, and before
each write to the client (`wrap(send)`). With `durability: strict` that hand-off waits for the
commit, so the client never holds an answer the audit log could still lose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import trio

from kt_trio.chat.policy import EVENT_TYPE
from kt_trio.config.schema import Target
from kt_trio.governance.budget import tokens_of
from kt_trio.governance.spend import SpendMeter
from kt_trio.keys import KeyInfo
from kt_trio.pricing import Pricing
from kt_trio.protocol.errors import dumps
from kt_trio.records import (
    MessageSeen,
    PolicyDecision,
    Record,
    ResponseTiming,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
    TokenUsage,
)
from kt_trio.reporting import AuditSink, KeyTokens, ReportingPoint
from kt_trio.telemetry.genai import operation_of_route

log = logging.getLogger("kt_trio.chat")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Report = Callable[[str | None, Record], None]

# With `include_content`, the response is kept for its `MessageSeen` record up to this size (the
# sessions' default `max_message_size_bytes`); a longer one is cut there and marked as cut.
MAX_AUDIT_CONTENT = 1024 * 1024
# The HTTP status recorded for a request whose client disconnected before its answer was sent.
CLIENT_CLOSED = 499


class Exchange:
    def __init__(
        self,
        *,
        session_id: str,
        route: str,
        target: Target,
        client_ip: str,
        key: KeyInfo | None,
        user_agent: str | None,
        report: Report,
        audit: AuditSink | None,
        key_tokens: KeyTokens | None,
        keep_content: bool = True,
        event_type: str = EVENT_TYPE,
        pricing: Pricing | None = None,
        spend: SpendMeter | None = None,
    ) -> None:
        """`spend`: the key's and its team's daily USD budgets, charged with each priced usage
        (by the reporting point) and settled when the exchange ends. `keep_content=False`: never
        keep the bodies for the audit log, whatever `include_content` says (passed-through
        requests: their bodies are not read as text)."""
        self.id = session_id
        self.event_type = event_type  # what its request and response records call the message
        self.route = route
        self.target = target  # the target that answered, once one did (fallback may change it)
        self.client_ip = client_ip
        self.key = key
        self.user_agent = user_agent
        # Its records: to the reporter at once, to the audit log at each `write()`; between two
        # hand-offs at most one request's decisions, usage and alerts, bounded by the policies in
        # the chain and the parts of one completion (`policy.MAX_PARTS`).
        self._reporting = ReportingPoint(session_id, report, audit, pricing=pricing, spend=spend)
        self._spend = spend
        self._key_tokens = key_tokens
        self._log_messages = audit is not None and audit.settings.log_all_access
        keep_content = keep_content and self._log_messages and audit.settings.include_content  # type: ignore[union-attr]
        self._content: bytearray | None = bytearray() if keep_content else None
        self.started_at = time.time()
        # Duration and, for a streamed (SSE) answer, time to its first chunk (`ResponseTiming`).
        self._t0 = time.perf_counter()
        self._streamed = False
        self._first_chunk_at: float | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.writes_out = 0
        self.status = 0
        self.closed_by: Literal["client", "upstream", "gateway"] = "upstream"
        self.reason = "ok"
        self.total = TokenUsage()
        self._unsettled = 0  # tokens not yet added to the key's daily count
        self.finished = False

    # -- records --------------------------------------------------------------------------------

    def emit(self, record: Record) -> None:
        self._reporting.emit(record)

    def _attribution(self) -> dict[str, str | None]:
        """The gateway key's name (never the key) and team, for every record that names them."""
        key = self.key
        return {"key_name": key.name if key is not None else None, "team": key.team if key is not None else None}

    def _session_fields(self) -> dict[str, Any]:
        """What the start and the end records both say of the exchange."""
        return {
            "session_id": self.id,
            "route": self.route,
            "target": self.target.id,
            "model": self.target.model_name,
            "client_ip": self.client_ip,
            "started_at": self.started_at,
            **self._attribution(),
        }

    def start(self, bytes_in: int) -> None:
        self.bytes_in = bytes_in
        self.emit(SessionStarted(user_agent=self.user_agent, **self._session_fields()))

    def decisions(self, decisions: list[PolicyDecision]) -> None:
        for d in decisions:
            self.emit(d)
        decisions.clear()

    def request_seen(self, forwarded: dict[str, Any] | None, decisions: tuple[PolicyDecision, ...]) -> None:
        """The client's request, as it went upstream (after redaction) or None when refused;
        serialised only when its content is kept (a request with inline images is megabytes)."""
        if not self._log_messages:
            return
        content = None
        if self._content is not None and forwarded is not None:
            content = dumps(forwarded).decode("utf-8", "replace")
        self.emit(
            MessageSeen(
                session_id=self.id,
                seq=1,
                direction="input",
                event_type=self.event_type,
                event_id=None,
                size=self.bytes_in,
                forwarded=forwarded is not None,
                decisions=decisions,
                content=content,
            )
        )

    def usage(self, target: Target, usage: TokenUsage | None, response_id: Any) -> None:
        if usage is None:
            return
        rid = response_id if isinstance(response_id, str) else None
        key = self.key
        self.emit(
            ResponseUsage(
                self.id,
                target.id,
                target.model_name,
                usage,
                response_id=rid,
                key_name=key.name if key is not None else None,
                team=key.team if key is not None else None,
            )
        )
        self.total = self.total + usage
        if self._key_tokens is not None:
            self._unsettled += tokens_of(usage)

    def ended_by(self, closed_by: Literal["client", "upstream", "gateway"], reason: str) -> None:
        """Why the exchange ends, when not simply with the upstream's answer."""
        self.closed_by = closed_by
        self.reason = reason

    # -- hand-offs ------------------------------------------------------------------------------

    @asynccontextmanager
    async def until_finished(self) -> AsyncIterator[None]:
        """Runs the exchange; one that has not finished when the block is left (the client went
        away, or a bug) still ends in the audit log, and tokens already reported are charged,
        even though we are being cancelled."""
        try:
            yield
        finally:
            if not self.finished:
                self.ended_by("client", "client went away")
                with trio.CancelScope(shield=True):
                    await self.finish(CLIENT_CLOSED)

    async def write(self) -> None:
        """Hands the pending records to the audit log (waits in strict durability)."""
        await self._reporting.write_audit()

    async def finish(self, status: int | None = None) -> None:
        """Charges the key's daily budget, records the end, and writes it all."""
        if self.finished:
            return
        self.finished = True
        if status is not None:
            self.status = status
        if self._key_tokens is not None and self._unsettled:
            tokens, self._unsettled = self._unsettled, 0
            try:
                for alert in await self._key_tokens.add(tokens, self.id):
                    self.emit(alert)
            except Exception:  # the key store failed: the request is still recorded
                log.exception(
                    "chat %s: could not add %d tokens to key %s", self.id, tokens, self.key.name if self.key else None
                )
        if self._spend is not None and self._spend.pending > 0:
            try:
                for spend_alert in await self._spend.settle(self.id):
                    self.emit(spend_alert)
            except Exception:  # the key store failed: the request is still recorded
                log.exception("chat %s: could not add its cost to the daily USD budgets", self.id)
        if self._log_messages:
            content = None
            if self._content is not None:
                content = self._content[:MAX_AUDIT_CONTENT].decode("utf-8", "replace")
                if len(self._content) > MAX_AUDIT_CONTENT:
                    content += "[truncated]"
            self.emit(
                MessageSeen(
                    session_id=self.id,
                    seq=2,
                    direction="output",
                    event_type=self.event_type,
                    event_id=None,
                    size=self.bytes_out,
                    forwarded=True,
                    content=content,
                )
            )
        self._timed()
        self.emit(
            SessionSummary(
                duration_secs=time.time() - self.started_at,
                messages_in=1,
                messages_out=self.writes_out,
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
                close_code=self.status,
                close_reason=self.reason,
                closed_by=self.closed_by,
                usage=self.total,
                **self._session_fields(),
            )
        )
        await self.write()

    def _timed(self) -> None:
        """The request as a GenAI operation (passed-through paths are none): how long it took,
        how soon a streamed answer's first chunk left, and whether it failed (`error.type` is
        the HTTP status, or why a started answer ended short)."""
        operation = operation_of_route(self.route)
        if operation is None:
            return
        now = time.perf_counter()
        error_type = None
        if self.status >= 400 or self.status == 0:
            error_type = str(self.status or CLIENT_CLOSED)
        elif self.reason != "ok":
            error_type = self.reason.split(":", 1)[0].replace(" ", "_")
        first = self._first_chunk_at
        self.emit(
            ResponseTiming(
                session_id=self.id,
                target=self.target.id,
                model=self.target.model_name,
                operation=operation,
                duration_secs=now - self._t0,
                ended_at=time.time(),
                time_to_first_chunk_secs=first - self._t0 if self._streamed and first is not None else None,
                error_type=error_type,
                usage=self.total if self.total.total_tokens or self.total.input_tokens else None,
            )
        )

    def wrap(self, send: Send) -> Send:
        """`send` that writes pending records first, and ends the exchange before the last bytes."""

        async def audited_send(message: MutableMapping[str, Any]) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                self.status = message["status"]
                self._streamed = any(
                    k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in message.get("headers", ())
                )
                if self.status >= 400 and self.closed_by == "upstream" and self.reason == "ok":
                    self.reason = "error"
            elif kind == "http.response.body":
                body = message.get("body", b"")
                if body:
                    if self._first_chunk_at is None:
                        self._first_chunk_at = time.perf_counter()
                    self.writes_out += 1
                    self.bytes_out += len(body)
                    if self._content is not None and len(self._content) <= MAX_AUDIT_CONTENT:
                        self._content += body[: MAX_AUDIT_CONTENT + 1 - len(self._content)]
                if not message.get("more_body"):
                    await self.finish()
            await self.write()
            await send(message)

        return audited_send
