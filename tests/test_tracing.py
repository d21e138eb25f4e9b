"""OpenTelemetry traces through a real gateway, exported over OTLP/HTTP to a receiver the test
runs on 127.0.0.1 (`tests.otlp_receiver`), and the JSON log lines that carry the trace ids."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from kt_trio.config import load_config_text
from kt_trio.logs import setup_logging
from kt_trio.mocks.http import HttpMockBehaviour, open_mock_http_upstream
from kt_trio.mocks.realtime import MockBehaviour
from kt_trio.records import Record, ResponseUsage
from kt_trio.server.gateway import Gateway
from kt_trio.telemetry.tracing import SHUTDOWN_SECS
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import SECRETS, chat_config, in_thread, openai_client
from tests.conftest import running
from tests.helpers import rejected_status
from tests.otlp_receiver import ReceivedSpan, otlp_receiver

# A client's W3C trace context (the spec's own example ids).
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2


async def _response(ws: WebSocketConnection) -> dict[str, object]:
    """Asks for a response and reads until its `response.done`."""
    await ws.send_message(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] == "response.done":
            return event  # type: ignore[no-any-return]


def _one(spans: list[ReceivedSpan]) -> ReceivedSpan:
    assert len(spans) == 1, spans
    return spans[0]


async def test_realtime_session_spans_over_otlp_continue_the_clients_trace() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    usage: list[ResponseUsage] = []
    try:
        with trio.fail_after(60):
            async with otlp_receiver() as rx:
                extra = f"observability:\n  otlp_endpoint: {rx.url}\n"
                async with running(MockBehaviour(usage_step=10), extra=extra) as gw:

                    def keep(_sid: str | None, record: Record) -> None:
                        if isinstance(record, ResponseUsage):
                            usage.append(record)

                    gw.gateway.reporter.add_sink(keep)
                    headers = [("traceparent", CLIENT_TRACEPARENT)]
                    async with open_websocket_url(gw.ws_url(model="gpt-realtime"), extra_headers=headers) as ws:
                        await _response(ws)
                        await _response(ws)
                    await gw.gateway.wait_sessions(lambda n: n == 0)
                    assert gw.mock is not None
                    upstream_traceparent = gw.mock.connections[0].header("traceparent")
                # The gateway has shut down: its shutdown exported the spans still queued.
                await rx.wait_until(lambda spans: any(s.name == "session /v1/realtime" for s in spans))
    finally:
        setup_logging("info", "text")

    session = _one(rx.named("session /v1/realtime"))
    dial = _one(rx.named("connect "))
    responses = sorted(rx.named("realtime_inference "), key=lambda s: s.start_ns)
    print(f"exported {len(rx.spans)} spans in {rx.requests} OTLP request(s): {[s.name for s in rx.spans]}")

    # One trace, continuing the client's: the session's parent is the client's span.
    assert session.trace_id == CLIENT_TRACE and session.parent_span_id == CLIENT_SPAN
    assert session.kind == SERVER and session.service == "kt_trio"
    assert all(s.trace_id == CLIENT_TRACE for s in rx.spans)
    # The dial and the responses are children of the session.
    assert dial.parent_span_id == session.span_id and dial.kind == CLIENT
    assert dial.attributes["kt.target"] == "mock" and dial.attributes["server.address"] == "127.0.0.1"
    # The provider got a traceparent of the same trace whose parent is the gateway's dial span.
    assert upstream_traceparent == f"00-{CLIENT_TRACE}-{dial.span_id}-01"

    a = session.attributes
    assert a["gen_ai.operation.name"] == "realtime_inference"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-realtime"
    assert a["kt.route"] == "/v1/realtime" and a["kt.target"] == "mock"
    assert a["kt.close_code"] == 1000 and a["kt.closed_by"] == "client"
    assert len(usage) == 2
    assert a["gen_ai.usage.input_tokens"] == sum(u.usage.input_tokens for u in usage)
    assert a["gen_ai.usage.output_tokens"] == sum(u.usage.output_tokens for u in usage)

    assert len(responses) == 2
    for span, used in zip(responses, usage, strict=True):
        r = span.attributes
        assert span.parent_span_id == session.span_id and span.kind == CLIENT
        assert span.name == "realtime_inference gpt-realtime"
        assert r["gen_ai.operation.name"] == "realtime_inference" and r["gen_ai.provider.name"] == "openai"
        assert r["gen_ai.usage.input_tokens"] == used.usage.input_tokens
        assert r["gen_ai.usage.output_tokens"] == used.usage.output_tokens
        assert r["gen_ai.response.id"] == used.response_id
        assert r["gen_ai.live_session.id"] == used.session_id
        duration = (span.end_ns - span.start_ns) / 1e9
        assert 0 < r["gen_ai.response.time_to_first_chunk"] <= duration
        assert session.start_ns <= span.start_ns and span.end_ns <= session.end_ns
    assert responses[0].attributes["gen_ai.usage.input_tokens"] != responses[1].attributes["gen_ai.usage.input_tokens"]

    # The JSON log lines written inside the session carry its trace.
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    start = next(line for line in lines if line["msg"] == "session start")
    end = next(line for line in lines if line["msg"] == "session end")
    assert start["trace_id"] == CLIENT_TRACE and start["span_id"] == session.span_id
    assert end["trace_id"] == CLIENT_TRACE


async def test_streamed_chat_completion_span_through_the_openai_sdk(tmp_path: Path) -> None:
    with trio.fail_after(60):
        async with otlp_receiver() as rx, open_mock_http_upstream(HttpMockBehaviour(chunks=["Hel", "lo"])) as mock:
            extra = f"observability:\n  otlp_endpoint: {rx.url}\ngateway:\n  state_dir: {tmp_path}\n"
            gateway = Gateway(load_config_text(chat_config(mock.url, [], extra), "chat.yaml"), secrets=SECRETS)
            async with serve_gateway(gateway) as gw:
                client = openai_client(gw.base_url, "sk-anything", default_headers={"traceparent": CLIENT_TRACEPARENT})

                def stream() -> str:
                    chunks = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

                assert await in_thread(stream) == "Hello"
            await rx.wait_until(lambda spans: bool([s for s in spans if s.name == "POST /v1/chat/completions"]))

    request = _one(rx.named("POST /v1/chat/completions"))
    call = _one(rx.named("chat "))
    assert request.trace_id == CLIENT_TRACE and request.parent_span_id == CLIENT_SPAN and request.kind == SERVER
    assert call.trace_id == CLIENT_TRACE and call.parent_span_id == request.span_id and call.kind == CLIENT
    a = request.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["kt.target"] == "oa"
    assert a["http.response.status_code"] == 200 and a["http.request.method"] == "POST"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert 0 < a["gen_ai.response.time_to_first_chunk"] <= (request.end_ns - request.start_ns) / 1e9
    assert call.attributes["http.response.status_code"] == 200
    assert call.name == "chat gpt-4o-mini" and call.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    # The provider got our traceparent (the attempt's span), not the client's.
    sent = mock.requests[-1].headers["traceparent"]
    assert sent == f"00-{CLIENT_TRACE}-{call.span_id}-01"


async def test_tracing_off_builds_nothing_and_passes_the_clients_traceparent_on() -> None:
    with trio.fail_after(30):
        async with running() as gw:
            assert gw.gateway.tracing is None
            headers = [("traceparent", CLIENT_TRACEPARENT)]
            async with open_websocket_url(gw.ws_url(model="gpt-realtime"), extra_headers=headers) as ws:
                await _response(ws)
            assert gw.mock is not None
            # Untraced, the gateway is no hop of the trace: the client's context goes on as it was.
            assert gw.mock.connections[0].header("traceparent") == CLIENT_TRACEPARENT


async def test_a_collector_that_is_down_does_not_hold_the_shutdown() -> None:
    with socket.socket() as s:  # a port nobody listens on: every export is refused
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with trio.fail_after(60):
        async with running(extra=f"observability:\n  otlp_endpoint: http://127.0.0.1:{dead}\n") as gw:
            async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as ws:
                await _response(ws)
            await gw.gateway.wait_sessions(lambda n: n == 0)
            leaving = trio.current_time()
        # Leaving the block shut the gateway down: its span flush gave up within its bound (the
        # spans are dropped with a warning) instead of retrying for as long as the collector is down.
        assert trio.current_time() - leaving < SHUTDOWN_SECS + 2


async def test_responses_websocket_and_a_refused_dial_over_otlp() -> None:
    with trio.fail_after(60):
        async with otlp_receiver() as rx:
            extra = f"observability:\n  otlp_endpoint: {rx.url}\n"
            async with running(extra=extra) as gw:
                async with open_websocket_url(gw.ws_url("/v1/responses", model="gpt-4.1-mini")) as ws:
                    await ws.send_message(json.dumps({"type": "response.create", "input": "hi"}))
                    while json.loads(await ws.get_message())["type"] != "response.completed":
                        pass
                await gw.gateway.wait_sessions(lambda n: n == 0)
            async with running(MockBehaviour(reject_status=503), extra=extra) as gw:
                status = await rejected_status(gw.ws_url(model="gpt-realtime"))
            assert status == 502
            await rx.wait_until(lambda spans: len([s for s in spans if s.name.startswith("session ")]) == 2)

    responses_session = _one(rx.named("session /v1/responses"))
    response = _one(rx.named("chat "))
    assert response.parent_span_id == responses_session.span_id
    assert response.attributes["gen_ai.operation.name"] == "chat"
    assert response.attributes["gen_ai.usage.input_tokens"] > 0
    assert response.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert responses_session.attributes["gen_ai.operation.name"] == "chat"

    refused = _one(rx.named("session /v1/realtime"))
    dial = _one([s for s in rx.named("connect ") if s.trace_id == refused.trace_id])
    assert dial.parent_span_id == refused.span_id
    assert dial.status_code == STATUS_ERROR and dial.attributes["error.type"] == "upstream_refused"
    # The session never opened: its span says why too.
    assert refused.status_code == STATUS_ERROR and refused.attributes["error.type"] == "upstream_refused"
