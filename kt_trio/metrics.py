"""Prometheus metrics for `/metrics` (issue 6), fed from the records sessions emit.

One `Metrics` per gateway, each with its own `CollectorRegistry`: the process-global registry
would make two gateways in one process (every test suite) share and double-count series.

Label values are bounded so a client cannot grow the series set:

- `gen_ai_request_model`: a model some target is configured with; a provider's dated snapshot
  name (`gpt-realtime-2025-08-28`) counts as the configured model it extends; anything else
  is `other`.
- `target`: a configured target id, else `other`. `route`: a route the gateway serves, else `other`.
- `close_code`: the exact code for the ones that mean something distinct here (`1000` normal,
  `1001` going away/idle/shutdown, `1005` no code, `1006` abnormal, `1008` policy, `1009` too
  big, `1011` gateway error, `1013` upstream unavailable), otherwise its range: `1xxx` (other
  RFC 6455 codes), `3xxx` (IANA-registered), `4xxx` (application-private), `other`; a chat
  request's "session" ends with an HTTP status (`kt_trio.chat.exchange`), counted by its class
  (`2xx`, `4xx`, `5xx`, ...). At most 17 values.
- `policy`, `reason`: names from our own code, still capped at `_MAX_FREE_LABELS` distinct values
  each (then `other`) so a bug cannot explode the series set.
- `team`: the gateway key's team (issue 7), `none` for clients without a team; teams are made by
  whoever creates keys, so the first `MAX_TEAMS` distinct teams seen keep their own series and
  later ones share `other`. Only on the two metrics a platform team charges back by: token usage
  and sessions.

Where each metric is fed:

- `kt_gen_ai_client_token_usage`: per `ResponseUsage` record (per response, not at session end).
  `input` and `output` are observed for every response; `cached_input`, `audio_input`,
  `audio_output` only for responses that had any, so their `_count` is "responses with such tokens".
- `kt_sessions_active`: `SessionStarted` adds the session, `SessionSummary` removes it.
- `kt_sessions_total`, `kt_messages_total`, `kt_message_bytes_total`: from `SessionSummary` at
  session end (no per-message work on the relay's hot path; a long session's messages therefore
  appear when it ends). `direction` is `input` (client → provider) or `output` (provider → client).
- `kt_policy_decisions_total`: per `PolicyDecision`. `kt_circuit_breaker_state`: per `BreakerTransition`.
- `kt_handshake_rejections_total`: `handshake_rejected(reason)`; `kt_relay_added_seconds`:
  `observe_relay_added(seconds)` (or `relay_added.observe`, which the relay calls per batch:
  held locally and added in bulk, at the latest a second later, at a session's end or a scrape);
  both called by the gateway where those things happen.
- `gen_ai_client_token_usage`, `gen_ai_client_operation_duration_seconds` and the time to first
  chunk / token series: the GenAI semantic-convention names (`kt_trio.telemetry.genai_metrics`),
  from `ResponseUsage` and `ResponseTiming`; their `error_type` label is capped like `reason`.
- `kt_event_subscribers`, `kt_event_dropped_total`, `kt_audit_queue_depth`, `kt_audit_available`:
  read at scrape time from callables bound with `bind_event_hub`, `set_audit_queue_depth_source`
  and `set_audit_available_source`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from kt_trio.histogram_batch import BatchedHistogram
from kt_trio.records import (
    BreakerTransition,
    PolicyDecision,
    Record,
    ResponseTiming,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
)
from kt_trio.telemetry.genai_metrics import GenAiMetrics

if TYPE_CHECKING:
    from kt_trio.config.schema import GatewayConfig

OTHER = "other"
ROUTES = frozenset({"/v1/realtime", "/v1/responses", "/v1/chat/completions"})
BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}
_EXACT_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006, 1008, 1009, 1011, 1013})
# Distinct values kept for labels whose values come from our own code (policy names, refusal
# reasons): far above what the code produces, low enough that a bug stays visible, not costly.
_MAX_FREE_LABELS = 32
# Teams with their own series: well above the teams of one gateway's tenants, low enough that
# ~14 buckets × 5 token types × models × targets × teams stays a few thousand series.
MAX_TEAMS = 64
NO_TEAM = "none"

# The OpenTelemetry GenAI semantic conventions' advisory buckets for gen_ai.client.token.usage.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# Time a message spends inside the gateway: tens of microseconds when nothing is judged, up to
# milliseconds when a policy parses a large event.
RELAY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def close_code_class(code: int) -> str:
    """The bounded `close_code` label value of a WebSocket close code (see the module docstring)."""
    if code in _EXACT_CLOSE_CODES:
        return str(code)
    if 1000 <= code <= 2999:
        return "1xxx"
    if 3000 <= code <= 3999:
        return "3xxx"
    if 4000 <= code <= 4999:
        return "4xxx"
    if 100 <= code <= 599:  # an HTTP status: a chat request's end
        return f"{code // 100}xx"
    return OTHER


class _CappedLabel:
    """Passes values through until `cap` distinct ones were seen; later new ones become `other`."""

    def __init__(self, cap: int = _MAX_FREE_LABELS) -> None:
        self._seen: set[str] = set()
        self._cap = cap

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._cap:
            return OTHER
        self._seen.add(value)
        return value


class _HubStats(Protocol):
    @property
    def subscriber_count(self) -> int: ...

    dropped_total: int


class _ScrapeTimeCollector(Collector):
    """Values owned elsewhere, read when Prometheus scrapes instead of being pushed on each change."""

    def __init__(self) -> None:
        self.hub: _HubStats | None = None
        self.audit_queue_depth: Callable[[], int] | None = None
        self.audit_available: Callable[[], bool] | None = None

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        yield GaugeMetricFamily(
            "kt_event_subscribers", "Open /ws/events subscribers.", value=hub.subscriber_count if hub else 0
        )
        yield CounterMetricFamily(
            "kt_event_dropped",
            "Event stream messages dropped because a subscriber's buffer was full.",
            value=hub.dropped_total if hub else 0,
        )
        depth = self.audit_queue_depth() if self.audit_queue_depth else 0
        yield GaugeMetricFamily("kt_audit_queue_depth", "Audit records waiting to be written.", value=depth)
        available = self.audit_available() if self.audit_available else True
        yield GaugeMetricFamily(
            "kt_audit_available", "1 while the audit log commits, 0 while its store fails.", value=int(available)
        )


class Metrics:
    """The gateway's metrics. `sink` is a Reporter sink; `render` answers `GET /metrics`."""

    def __init__(self, *configs: GatewayConfig) -> None:
        """`configs`: every pack the gateway serves; their targets and models bound the labels."""
        targets = [t for config in configs for t in config.providers.targets]
        self._models = frozenset(t.model for t in targets if t.model)
        # Longest first, so `gpt-4o-realtime-preview-2024-12-17` matches the longest configured prefix.
        self._model_prefixes = tuple(sorted(self._models, key=len, reverse=True))
        self._targets = frozenset(t.id for t in targets)
        self._policy_label = _CappedLabel()
        self._reason_label = _CappedLabel()
        self._error_label = _CappedLabel()
        self._team_label = _CappedLabel(MAX_TEAMS)
        self._active: set[str] = set()

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.token_usage = Histogram(
            "kt_gen_ai_client_token_usage",
            "Tokens used per response (OpenTelemetry gen_ai.client.token.usage).",
            ["gen_ai_token_type", "gen_ai_request_model", "target", "team"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        # `multiprocess_mode`: how `serve --workers N` sums a gauge over its workers (used only
        # when PROMETHEUS_MULTIPROC_DIR is set, see `render`).
        self.sessions_active = Gauge(
            "kt_sessions_active", "Open proxied sessions.", registry=r, multiprocess_mode="livesum"
        )
        self.sessions_total = Counter(
            "kt_sessions_total", "Proxied sessions ended.", ["route", "target", "close_code", "team"], registry=r
        )
        self.messages_total = Counter("kt_messages_total", "Messages relayed.", ["direction"], registry=r)
        self.message_bytes_total = Counter(
            "kt_message_bytes_total", "Message payload bytes relayed.", ["direction"], registry=r
        )
        self.policy_decisions_total = Counter(
            "kt_policy_decisions_total", "Policy decisions.", ["policy", "action"], registry=r
        )
        # Labels as token usage's (bounded the same way): spend by model and team in dollars.
        self.cost_usd_total = Counter(
            "kt_cost_usd", "Cost of the priced responses, USD (kt_trio.pricing).", ["model", "team"], registry=r
        )
        self.handshake_rejections_total = Counter(
            "kt_handshake_rejections_total", "WebSocket handshakes refused.", ["reason"], registry=r
        )
        self.circuit_breaker_state = Gauge(
            "kt_circuit_breaker_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["target"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.relay_added_seconds = Histogram(
            "kt_relay_added_seconds", "Time a message spends inside the gateway.", buckets=RELAY_BUCKETS, registry=r
        )
        # Observed once per relayed batch: counted locally, added in bulk (`kt_trio.histogram_batch`).
        self.relay_added = BatchedHistogram(self.relay_added_seconds, RELAY_BUCKETS)
        for target in self._targets:
            self.circuit_breaker_state.labels(target=target).set(0)  # every breaker starts closed
        self.genai = GenAiMetrics(
            r,
            model_label=self.model_label,
            error_label=self._error_label,
            providers={t.id: t.provider for t in targets},
        )
        self._scrape_time = _ScrapeTimeCollector()
        r.register(self._scrape_time)

    def add_configs(self, *configs: GatewayConfig) -> None:
        """A config reload: the new packs' targets and models become labels too (the old ones
        stay, so series already exported keep their names)."""
        targets = [t for config in configs for t in config.providers.targets]
        self._models = self._models | {t.model for t in targets if t.model}
        self._model_prefixes = tuple(sorted(self._models, key=len, reverse=True))
        new = {t.id for t in targets} - self._targets
        self._targets = self._targets | new
        for target in new:
            self.circuit_breaker_state.labels(target=target).set(0)

    # -- label bounding ------------------------------------------------------------------------

    def model_label(self, model: str | None) -> str:
        if not model:
            return OTHER
        if model in self._models:
            return model
        for configured in self._model_prefixes:
            if model.startswith(configured + "-"):
                return configured
        return OTHER

    def target_label(self, target: str) -> str:
        return target if target in self._targets else OTHER

    def team_label(self, team: str | None) -> str:
        return self._team_label(team) if team else NO_TEAM

    # -- feeding -------------------------------------------------------------------------------

    def sink(self, session_id: str | None, record: Record) -> None:
        """The Reporter sink: sync and cheap (a few dict lookups and lock-free increments)."""
        if isinstance(record, ResponseUsage):
            self._response_usage(record)
            self.genai.usage(record)
        elif isinstance(record, ResponseTiming):
            self.genai.timing(record)
        elif isinstance(record, PolicyDecision):
            self.policy_decisions_total.labels(policy=self._policy_label(record.policy), action=record.action).inc()
        elif isinstance(record, SessionStarted):
            self._active.add(record.session_id)
            self.sessions_active.set(len(self._active))
            self.genai.session_started(record)
        elif isinstance(record, SessionSummary):
            self._session_end(record)
            self.genai.session_ended(record)
        elif isinstance(record, BreakerTransition):
            state = BREAKER_STATE_VALUE.get(record.to_state, 0)
            self.circuit_breaker_state.labels(target=self.target_label(record.target)).set(state)

    def _response_usage(self, record: ResponseUsage) -> None:
        model = self.model_label(record.model)
        target = self.target_label(record.target)
        team = self.team_label(record.team)
        u = record.usage
        observations = (
            ("input", u.input_tokens, True),
            ("output", u.output_tokens, True),
            ("cached_input", u.cached_tokens, u.cached_tokens > 0),
            ("audio_input", u.input_audio_tokens, u.input_audio_tokens > 0),
            ("audio_output", u.output_audio_tokens, u.output_audio_tokens > 0),
        )
        for token_type, value, observe in observations:
            if observe:
                self.token_usage.labels(
                    gen_ai_token_type=token_type, gen_ai_request_model=model, target=target, team=team
                ).observe(value)
        if record.cost_usd:
            self.cost_usd_total.labels(model=model, team=team).inc(record.cost_usd)

    def _session_end(self, s: SessionSummary) -> None:
        self.relay_added.flush()
        self._active.discard(s.session_id)
        self.sessions_active.set(len(self._active))
        route = s.route if s.route in ROUTES else OTHER
        self.sessions_total.labels(
            route=route,
            target=self.target_label(s.target),
            close_code=close_code_class(s.close_code),
            team=self.team_label(s.team),
        ).inc()
        self.messages_total.labels(direction="input").inc(s.messages_in)
        self.messages_total.labels(direction="output").inc(s.messages_out)
        self.message_bytes_total.labels(direction="input").inc(s.bytes_in)
        self.message_bytes_total.labels(direction="output").inc(s.bytes_out)

    def handshake_rejected(self, reason: str) -> None:
        """One refused handshake; `reason` is a short fixed word (`unauthorized`, `circuit_open`, ...)."""
        self.handshake_rejections_total.labels(reason=self._reason_label(reason)).inc()

    def observe_relay_added(self, seconds: float) -> None:
        self.relay_added.observe(seconds)

    def bind_event_hub(self, hub: _HubStats) -> None:
        """`kt_event_subscribers` and `kt_event_dropped_total` are read from `hub` at scrape time."""
        self._scrape_time.hub = hub

    def set_audit_available_source(self, available: Callable[[], bool]) -> None:
        """`kt_audit_available` is `available()` at scrape time."""
        self._scrape_time.audit_available = available

    def set_audit_queue_depth_source(self, depth: Callable[[], int]) -> None:
        """`kt_audit_queue_depth` is `depth()` at scrape time (must be cheap and non-blocking)."""
        self._scrape_time.audit_queue_depth = depth

    # -- exposition ----------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type, for `GET /metrics`.

        Under `serve --workers N` (the supervisor sets PROMETHEUS_MULTIPROC_DIR, prometheus_client's
        multiprocess mode): every worker writes its series to files there and any worker's
        `/metrics` answers the sum over all of them; the scrape-time gauges (event subscribers,
        audit queue) are that worker's own."""
        self.relay_added.flush()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self._scrape_time)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
