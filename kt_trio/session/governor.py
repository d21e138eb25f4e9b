"""Per-session governance: the message rate limit, usage accumulation and the session budget.

I/O-free like the policies: the pump hands it each message's sniffed type (and, only for the few
event types that need it, the payload) and acts on what it answers. Records it produces (usage,
budget alerts) go to the session's one reporting point.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from attrs import frozen

from kt_trio.governance.budget import SessionBudget, tokens_of
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.governance.spend import SpendMeter, refusal_words
from kt_trio.governance.usage import (
    CLIENT_MODEL_EVENT_TYPES,
    SERVER_MODEL_EVENT_TYPES,
    USAGE_EVENT_TYPES,
    UsageAccumulator,
    model_from_event,
)
from kt_trio.protocol.errors import Protocol, budget_exceeded_error_event, error_event, rate_limit_error_event
from kt_trio.protocol.sniff import client_event_id
from kt_trio.records import Record, ResponseTiming, ResponseUsage, TokenUsage
from kt_trio.reporting import KeyTokens
from kt_trio.telemetry import genai
from kt_trio.telemetry.clock import CREATE, CREATED, DELTA_SUFFIX, FINAL_TYPES, ResponseClock, response_error
from kt_trio.wire.frames import CloseCode

# Server events the accumulator reads (usage carriers and the ones that name the session's
# model), and the start of a response, which the response clock reads.
_SERVER_TYPES = USAGE_EVENT_TYPES | SERVER_MODEL_EVENT_TYPES | {CREATED}
# The client events a governor with no rate limit and no session budget acts on: the ones
# naming a model (usage, `--models`) and `response.create` (response clock, daily budgets).
_CLIENT_TYPES = CLIENT_MODEL_EVENT_TYPES | {CREATE}


@frozen
class Gate:
    """What to do with a client message instead of forwarding it now."""

    reply: bytes | None = None  # an error event for the client; the message is dropped
    delay_until: float | None = None  # `mode: delay`: forward it at this trio time


class SessionGovernor:
    def __init__(
        self,
        *,
        session_id: str,
        target: str,
        url_model: str | None,
        limiters: Sequence[MessageRateLimiter],
        budget: SessionBudget | None,
        emit: Callable[[Record], None],
        key_tokens: KeyTokens | None = None,
        allowed_models: frozenset[str] | None = None,
        protocol: Protocol = "realtime",
        spend: SpendMeter | None = None,
    ) -> None:
        """`allowed_models`: `keys create --models`; a `session.update` or `response.create`
        naming another model is answered with an error event `model_not_allowed` and dropped."""
        self.session_id = session_id
        self._allowed_models = allowed_models
        self._protocol = protocol
        self.usage = UsageAccumulator(session_id, target, url_model)
        # The session's own limit and, for a gateway key with `messages_per_minute`, the key's
        # bucket shared by all of its sessions; a message must pass every one of them.
        self._limiters = tuple(limiters)
        self._budget = budget
        self._emit = emit
        self.key_tokens = key_tokens
        # Tokens used since the key's daily count was last updated (`settle_key_tokens`).
        self.unsettled_tokens = 0
        # The key's and its team's daily USD budgets; the reporting point charges them.
        self.spend = spend
        # Duration and time to first delta of each response (`ResponseTiming`, metrics and traces).
        self.clock = ResponseClock()
        self._operation = genai.REALTIME if protocol == "realtime" else genai.CHAT
        # What the pump asks about, so it skips the call for every other message (most of
        # them): `client_message` for these client event types (None: for every message), and
        # `upstream_message` for `server_types` or while `clock.awaiting_chunk`.
        self.client_types: frozenset[str] | None = None if self._limiters or budget is not None else _CLIENT_TYPES
        self.server_types = _SERVER_TYPES

    def client_message(self, event_type: str | None, payload: Callable[[], bytes], now: float) -> Gate | None:
        """None: forward. A Gate: drop with a reply, or hold until a time (backpressure)."""
        for limiter in self._limiters:
            decision = limiter.check(event_type, now)
            if decision.action == "reject":
                reply = rate_limit_error_event(
                    client_event_id(payload()), limiter.bucket.rate_per_sec * 60, protocol=self._protocol
                )
                return Gate(reply=reply)
            if decision.action == "delay":
                return Gate(delay_until=decision.until)
        key_tokens = self.key_tokens
        if key_tokens is not None and key_tokens.exhausted and event_type == "response.create":
            return Gate(
                reply=budget_exceeded_error_event(
                    client_event_id(payload()),
                    whose="Daily token budget of this key",
                    until="with this key today",
                    protocol=self._protocol,
                )
            )
        spent = self.spend.exhausted if self.spend is not None and event_type == "response.create" else None
        if spent is not None:
            whose, until = refusal_words(spent)
            return Gate(
                reply=budget_exceeded_error_event(
                    client_event_id(payload()), whose=whose, until=until, protocol=self._protocol
                )
            )
        if self._budget is not None and not self._budget.check_client_event(event_type):
            budget = self._budget
            return Gate(
                reply=budget_exceeded_error_event(
                    client_event_id(payload()), budget.used_tokens, budget.max_total_tokens, protocol=self._protocol
                )
            )
        if event_type in CLIENT_MODEL_EVENT_TYPES:
            allowed = self._allowed_models
            if allowed is not None:
                named = model_from_event(event_type, payload())
                if named is not None and named[1] not in allowed:
                    return Gate(reply=self._model_not_allowed(named[1], payload()))
            self.usage.observe_client_event(event_type, payload())
            if event_type == CREATE:
                self.clock.asked(time.perf_counter())
        return None

    def _model_not_allowed(self, model: str, payload: bytes) -> bytes:
        return error_event(
            error_type="permission_error",
            code="model_not_allowed",
            message=f"this gateway key may not use model {model[:128]!r}",
            client_event_id=client_event_id(payload),
            protocol=self._protocol,
        )

    def upstream_message(self, event_type: str | None, payload: Callable[[], bytes]) -> tuple[int, str] | None:
        """Taps usage and response timing; returns a close request when the session budget says
        `close`."""
        clock = self.clock
        if clock.awaiting_chunk and event_type is not None and event_type.endswith(DELTA_SUFFIX):
            clock.chunk(time.perf_counter())
        if event_type not in _SERVER_TYPES:
            return None
        if event_type == CREATED:
            clock.created(time.perf_counter())
            return None
        data = payload()
        record = self.usage.observe_server_event(event_type, data)
        if event_type in FINAL_TYPES:
            self._timed(event_type, data, record)
        if record is None:
            return None
        self._emit(record)
        if self.key_tokens is not None:
            self.unsettled_tokens += tokens_of(record.usage)
        budget = self._budget
        if budget is None:
            return None
        for alert in budget.add(record.usage, self.session_id):
            self._emit(alert)
        if budget.close_required:
            return (CloseCode.POLICY_VIOLATION, "session token budget exceeded")
        return None

    @property
    def unsettled(self) -> bool:
        """Tokens or dollars not yet added to the key's (and team's) daily budgets."""
        return bool(self.unsettled_tokens) or (self.spend is not None and self.spend.pending > 0)

    def _timed(self, event_type: str, data: bytes, usage: ResponseUsage | None) -> None:
        lap = self.clock.finished(time.perf_counter())
        if lap is None:
            return
        self._emit(
            ResponseTiming(
                session_id=self.session_id,
                target=self.usage.target,
                model=usage.model if usage is not None else self.usage.model,
                operation=self._operation,
                duration_secs=lap.duration_secs,
                ended_at=time.time(),
                time_to_first_chunk_secs=lap.time_to_first_chunk_secs,
                error_type=response_error(event_type, data),
                response_id=usage.response_id if usage is not None else None,
                usage=usage.usage if usage is not None else None,
            )
        )

    async def settle_key_tokens(self) -> None:
        """Adds this session's new tokens to its key's daily count (a write to keys.db) and its
        new cost to the key's and team's daily USD budgets."""
        if self.key_tokens is not None and self.unsettled_tokens:
            tokens, self.unsettled_tokens = self.unsettled_tokens, 0
            for alert in await self.key_tokens.add(tokens, self.session_id):
                self._emit(alert)
        if self.spend is not None and self.spend.pending > 0:
            for spend_alert in await self.spend.settle(self.session_id):
                self._emit(spend_alert)

    @property
    def total(self) -> TokenUsage:
        return self.usage.total

    @property
    def model(self) -> str:
        return self.usage.model
