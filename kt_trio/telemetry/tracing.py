"""OpenTelemetry traces (DESIGN.md "Observability and cost"): one trace per session or HTTP request.

    session /v1/realtime                 SERVER  continues the client's `traceparent`
      connect <target>                   CLIENT  the upstream dial; its id is the provider's parent
      realtime_inference <model>         CLIENT  one per response (usage, duration, first delta)
      realtime_inference <model>
    POST /v1/chat/completions            SERVER  gen_ai attributes, usage, time to first chunk
      chat <model>                       CLIENT  one per upstream attempt; the provider's parent

Nothing here runs per relayed message. Session and request spans are opened by the code that
serves them (`Tracing.trace`, a few lines in the gateway and `ChatApp`) and put in
`kt_trio.telemetry.context.CURRENT`; the response spans are built after the fact, with their
real start and end times, from the `ResponseTiming` records the session already emits, when
the gateway's Reporter hands them to `sink`. Usage totals and close codes come from the
`SessionSummary`, which also ends the span.

Spans leave through the SDK's `BatchSpanProcessor`: `span.end()` only appends to its bounded
queue (2048 spans; when full the SDK drops spans rather than grow or block) and its own thread
exports over OTLP/HTTP. `aclose` flushes on shutdown from a worker thread, bounded by
`SHUTDOWN_SECS`, so a collector that is down never holds trio's loop.

This module is imported only when tracing is on (`open_tracing`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import trio
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kt_trio.records import Record, ResponseTiming, SessionStarted, SessionSummary
from kt_trio.telemetry import genai, tracing_wanted
from kt_trio.telemetry.context import CURRENT

log = logging.getLogger("kt_trio.telemetry")

# How long shutdown waits for the last spans to be exported before giving up on them.
SHUTDOWN_SECS = 5.0
# Each export request's own timeout (the SDK's default is 10 s): under the shutdown bound.
EXPORT_TIMEOUT_SECS = 4.0
# WebSocket close codes that mean the gateway or the provider failed (not a client's choice).
_FAILED_CLOSE_CODES = frozenset({1011, 1013})
_PROPAGATOR = TraceContextTextMapPropagator()

TraceKind = Literal["session", "http"]


def traceparent_of(span: Span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


class _Call:
    """A span around one upstream dial or request (`kt_trio.telemetry.context.Call`)."""

    __slots__ = ("span", "traceparent")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.traceparent = traceparent_of(span)

    def set(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)


class _Trace:
    """One session's or HTTP request's trace while it is served (`context.Scope`)."""

    __slots__ = ("_inner", "ended", "failed_call", "kind", "session_id", "span", "tracing")

    def __init__(self, tracing: Tracing, span: Span, kind: TraceKind) -> None:
        self.tracing = tracing
        self.span = span
        self.kind = kind
        self.session_id: str | None = None  # learnt from its SessionStarted
        self.ended = False
        self._inner: Span | None = None
        self.failed_call: BaseException | None = None  # the last upstream call's failure

    def ids(self) -> tuple[str, str]:
        ctx = (self._inner or self.span).get_span_context()
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    @contextmanager
    def call(self, name: str, attributes: dict[str, Any]) -> Iterator[_Call]:
        span = self.tracing.tracer.start_span(
            name, context=set_span_in_context(self.span), kind=SpanKind.CLIENT, attributes=attributes
        )
        self._inner = span
        try:
            yield _Call(span)
        except BaseException as exc:
            _failed(span, exc)
            self.failed_call = exc
            raise
        finally:
            self._inner = None
            span.end()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.span.end()

    # -- records --------------------------------------------------------------------------------

    def on_record(self, record: Record) -> None:
        if type(record) is SessionStarted:
            if self.session_id is None:
                self.session_id = record.session_id
                self.span.set_attributes(self.tracing.started_attributes(record))
            return
        if getattr(record, "session_id", None) != self.session_id or self.ended:
            return
        if type(record) is ResponseTiming:
            if self.kind == "session":
                self.tracing.response_span(self.span, record)
            else:
                self.span.set_attributes(self.tracing.timing_attributes(record))
                if record.error_type is not None:
                    self.span.set_attribute(genai.ERROR_TYPE, record.error_type)
        elif type(record) is SessionSummary:
            self._summary(record)

    def _summary(self, s: SessionSummary) -> None:
        span = self.span
        attrs: dict[str, Any] = {
            genai.RESPONSE_MODEL: s.model,
            "kt.closed_by": s.closed_by,
            "kt.close_reason": s.close_reason,
            **genai.usage_attributes(s.usage),
        }
        if s.cost_usd is not None:
            attrs["kt.cost_usd"] = s.cost_usd
        if self.kind == "http":
            attrs["http.response.status_code"] = s.close_code
            failed = s.close_code >= 500
        else:
            attrs["kt.close_code"] = s.close_code
            failed = s.close_code in _FAILED_CLOSE_CODES
        span.set_attributes(attrs)
        if failed:
            span.set_attribute(genai.ERROR_TYPE, str(s.close_code))
            span.set_status(Status(StatusCode.ERROR, s.close_reason[:200]))
        self.end()


def _failed(span: Span, exc: BaseException) -> None:
    """Marks `span` failed by `exc`: `error.type` is our error code when it has one (a refusal,
    a dial error), else the exception's class; the HTTP status when it carries one."""
    code = getattr(exc, "code", None)
    span.set_attribute(genai.ERROR_TYPE, code if isinstance(code, str) else type(exc).__qualname__)
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))


class Tracing:
    """One gateway's tracer provider, exporter and the sink that turns records into spans."""

    def __init__(self, exporter: SpanExporter, *, providers: Mapping[str, str]) -> None:
        """`providers`: target id -> our provider name (for `gen_ai.provider.name`)."""
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "kt_trio"}
        self._provider = TracerProvider(resource=Resource.create(attributes))
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self._provider.get_tracer("kt_trio")
        self._providers = {target: genai.provider_name(p) for target, p in providers.items()}

    # -- traces of sessions and requests --------------------------------------------------------

    @contextmanager
    def trace(
        self,
        name: str,
        kind: TraceKind,
        *,
        traceparent: str | None,
        tracestate: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """A session's or an HTTP request's span, continuing the client's W3C trace context,
        current for everything the block runs (and the tasks it starts)."""
        parent: Context | None = None
        if traceparent:
            carrier = {"traceparent": traceparent}
            if tracestate:
                carrier["tracestate"] = tracestate
            parent = _PROPAGATOR.extract(carrier)  # an invalid header is ignored: a new trace
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        trace = _Trace(self, span, kind)
        token = CURRENT.set(trace)
        try:
            yield
        except BaseException as exc:
            if not trace.ended:
                _failed(span, exc)
            raise
        finally:
            CURRENT.reset(token)
            if trace.session_id is None and trace.failed_call is not None and not trace.ended:
                # Never opened: the upstream refused or could not be reached (the client got
                # the HTTP refusal); the root says so, not only its dial span.
                _failed(span, trace.failed_call)
            trace.end()

    def sink(self, session_id: str | None, record: Record) -> None:
        """The Reporter sink: records of the running task's own trace only; three types read."""
        kind = type(record)
        if kind is not ResponseTiming and kind is not SessionSummary and kind is not SessionStarted:
            return
        trace = CURRENT.get()
        if isinstance(trace, _Trace) and trace.tracing is self:
            trace.on_record(record)

    # -- attributes -----------------------------------------------------------------------------

    def provider(self, target: str) -> str:
        return self._providers.get(target, "_OTHER")

    def started_attributes(self, s: SessionStarted) -> dict[str, Any]:
        operation = genai.operation_of_route(s.route)
        attrs: dict[str, Any] = {
            "kt.session.id": s.session_id,
            "kt.route": s.route,
            "kt.target": s.target,
            genai.PROVIDER_NAME: self.provider(s.target),
            genai.REQUEST_MODEL: s.model,
            "client.address": s.client_ip,
        }
        if operation is not None:
            attrs[genai.OPERATION_NAME] = operation
        optional = (("kt.key_name", s.key_name), ("kt.team", s.team), ("user_agent.original", s.user_agent))
        attrs.update((k, v) for k, v in optional if v is not None)
        return attrs

    def timing_attributes(self, r: ResponseTiming) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            genai.OPERATION_NAME: r.operation,
            genai.PROVIDER_NAME: self.provider(r.target),
            genai.REQUEST_MODEL: r.model,
            "kt.target": r.target,
        }
        if r.time_to_first_chunk_secs is not None:
            attrs[genai.TIME_TO_FIRST_CHUNK] = r.time_to_first_chunk_secs
        if r.response_id is not None:
            attrs[genai.RESPONSE_ID] = r.response_id
        if r.usage is not None:
            attrs.update(genai.usage_attributes(r.usage))
        return attrs

    def response_span(self, parent: Span, r: ResponseTiming) -> None:
        """One response of a session, after the fact, with its measured start and end."""
        end_ns = int(r.ended_at * 1e9)
        attrs = self.timing_attributes(r)
        if r.operation == genai.REALTIME:
            attrs[genai.LIVE_SESSION_ID] = r.session_id
        span = self.tracer.start_span(
            f"{r.operation} {r.model}",
            context=set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=end_ns - int(r.duration_secs * 1e9),
        )
        if r.error_type is not None:
            span.set_attribute(genai.ERROR_TYPE, r.error_type)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end_ns)

    # -- shutdown -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Exports what is queued (the SDK joins its thread), within `SHUTDOWN_SECS`."""
        # Shielded: a gateway cancelled out of `serve` still flushes, for at most SHUTDOWN_SECS.
        with trio.CancelScope(shield=True), trio.move_on_after(SHUTDOWN_SECS) as waited:
            await trio.to_thread.run_sync(self._provider.shutdown, abandon_on_cancel=True)
        if waited.cancelled_caught:
            log.warning("traces not all exported within %gs of shutdown; the rest are dropped", SHUTDOWN_SECS)


def open_tracing(otlp_endpoint: str | None, providers: Mapping[str, str]) -> Tracing | None:
    """The gateway's tracing, or None when it is off (then nothing of OpenTelemetry is used).

    `otlp_endpoint` is the collector's base URL (spans go to `<base>/v1/traces`); unset, the
    exporter reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or
    `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL) and the other `OTEL_EXPORTER_OTLP_*` settings."""
    if not tracing_wanted(otlp_endpoint):
        return None
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        log.warning("OTLP protocol %s is not supported; traces are sent as http/protobuf", protocol)
    endpoint = otlp_endpoint.rstrip("/") + "/v1/traces" if otlp_endpoint else None
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_SECS)
    return Tracing(exporter, providers=providers)
