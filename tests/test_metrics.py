"""Metrics: feed records, parse `render()` with prometheus-client's own text parser, check values."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kt_trio.config import load_config_text
from kt_trio.events import EventHub
from kt_trio.metrics import Metrics, close_code_class
from kt_trio.records import (
    BreakerTransition,
    BudgetAlert,
    PolicyDecision,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
    TokenUsage,
)

CONFIG = """
providers:
  targets:
    - id: mock
      provider: openai
      model: gpt-realtime
      base_url: ws://127.0.0.1:1/v1/realtime
    - id: mock-responses
      provider: openai
      model: gpt-4.1-mini
      base_url: ws://127.0.0.1:1/v1/responses
"""


def metrics() -> Metrics:
    return Metrics(load_config_text(CONFIG, "test.yaml"))


def samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = m.render()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, frozenset(labels.items())))


def started(sid: str) -> SessionStarted:
    return SessionStarted(sid, "/v1/realtime", "mock", "gpt-realtime", "127.0.0.1", 0.0)


def ended(sid: str, code: int = 1000, **kw: Any) -> SessionSummary:
    base: dict[str, Any] = dict(
        session_id=sid,
        route="/v1/realtime",
        target="mock",
        model="gpt-realtime",
        client_ip="127.0.0.1",
        started_at=0.0,
        duration_secs=1.0,
        messages_in=3,
        messages_out=5,
        bytes_in=100,
        bytes_out=1000,
        close_code=code,
        close_reason="",
        closed_by="client",
    )
    base.update(kw)
    return SessionSummary(**base)


def test_token_usage_histogram_per_response() -> None:
    m = metrics()
    usage = TokenUsage(input_tokens=120, output_tokens=48, cached_tokens=64, input_audio_tokens=40)
    for _ in range(3):
        m.sink("s1", ResponseUsage("s1", "mock", "gpt-realtime", usage))
    m.sink("s1", ResponseUsage("s1", "mock", "gpt-realtime", TokenUsage(input_tokens=1, output_tokens=2)))
    labels = {"gen_ai_request_model": "gpt-realtime", "target": "mock", "team": "none"}
    assert value(m, "kt_gen_ai_client_token_usage_count", gen_ai_token_type="input", **labels) == 4
    assert value(m, "kt_gen_ai_client_token_usage_sum", gen_ai_token_type="input", **labels) == 361
    assert value(m, "kt_gen_ai_client_token_usage_sum", gen_ai_token_type="output", **labels) == 146
    # Detail types are observed only for responses that had any.
    assert value(m, "kt_gen_ai_client_token_usage_count", gen_ai_token_type="cached_input", **labels) == 3
    assert value(m, "kt_gen_ai_client_token_usage_sum", gen_ai_token_type="audio_input", **labels) == 120
    assert value(m, "kt_gen_ai_client_token_usage_count", gen_ai_token_type="audio_output", **labels) is None
    assert (
        value(m, "kt_gen_ai_client_token_usage_bucket", gen_ai_token_type="input", le="256.0", **labels) == 4
    )  # 120 and 1 are both <= 256


def test_model_and_target_labels_stay_bounded() -> None:
    m = metrics()
    m.sink("s", ResponseUsage("s", "mock", "gpt-realtime-2025-08-28", TokenUsage(input_tokens=1)))
    m.sink("s", ResponseUsage("s", "mock", "attacker-chosen-model-123", TokenUsage(input_tokens=1)))
    m.sink("s", ResponseUsage("s", "unknown-target", "gpt-4.1-mini", TokenUsage(input_tokens=1)))
    labels = {"gen_ai_token_type": "input", "team": "none"}
    assert value(m, "kt_gen_ai_client_token_usage_count", gen_ai_request_model="gpt-realtime", target="mock", **labels)
    assert value(m, "kt_gen_ai_client_token_usage_count", gen_ai_request_model="other", target="mock", **labels)
    assert value(m, "kt_gen_ai_client_token_usage_count", gen_ai_request_model="gpt-4.1-mini", target="other", **labels)
    models = {dict(k[1]).get("gen_ai_request_model") for k in samples(m) if k[0].startswith("kt_gen_ai")}
    assert models == {"gpt-realtime", "other", "gpt-4.1-mini"}


def test_sessions_messages_and_close_classes() -> None:
    m = metrics()
    for i in range(4):
        m.sink(f"s{i}", started(f"s{i}"))
    assert value(m, "kt_sessions_active") == 4
    m.sink("s0", ended("s0", 1000))
    m.sink("s1", ended("s1", 1008))
    m.sink("s2", ended("s2", 4321))
    m.sink("s2", ended("s2", 4321))  # a repeated summary does not push the gauge below the truth
    assert value(m, "kt_sessions_active") == 1
    base = {"route": "/v1/realtime", "target": "mock", "team": "none"}
    assert value(m, "kt_sessions_total", close_code="1000", **base) == 1
    assert value(m, "kt_sessions_total", close_code="1008", **base) == 1
    assert value(m, "kt_sessions_total", close_code="4xxx", **base) == 2
    assert value(m, "kt_messages_total", direction="input") == 12
    assert value(m, "kt_messages_total", direction="output") == 20
    assert value(m, "kt_message_bytes_total", direction="output") == 4000


def test_close_code_classes_are_bounded() -> None:
    classes = {close_code_class(code) for code in range(0, 70_000)}
    websocket = {"1000", "1001", "1005", "1006", "1008", "1009", "1011", "1013", "1xxx", "3xxx", "4xxx", "other"}
    assert classes == websocket | {"1xx", "2xx", "3xx", "4xx", "5xx"}


def test_policy_breaker_handshake_relay() -> None:
    m = metrics()
    m.sink("s", PolicyDecision("pii-detector", "redact", "input"))
    m.sink("s", PolicyDecision("pii-detector", "redact", "output"))
    m.sink("s", PolicyDecision("prompt-injection", "block", "input"))
    m.sink("s", BudgetAlert("s", 0.5, 10, 20, False))  # not a metric: ignored without error
    assert value(m, "kt_policy_decisions_total", policy="pii-detector", action="redact") == 2
    assert value(m, "kt_policy_decisions_total", policy="prompt-injection", action="block") == 1
    assert value(m, "kt_circuit_breaker_state", target="mock") == 0  # configured breakers start closed
    m.sink(None, BreakerTransition("mock", "closed", "open", "x"))
    assert value(m, "kt_circuit_breaker_state", target="mock") == 2
    m.sink(None, BreakerTransition("mock", "open", "half_open", "x"))
    assert value(m, "kt_circuit_breaker_state", target="mock") == 1
    for reason in ("unauthorized", "unauthorized", "circuit_open"):
        m.handshake_rejected(reason)
    assert value(m, "kt_handshake_rejections_total", reason="unauthorized") == 2
    for i in range(100):
        m.handshake_rejected(f"bug-{i}")  # a bug that puts free text in a label is capped
    reasons = {dict(k[1])["reason"] for k in samples(m) if k[0] == "kt_handshake_rejections_total"}
    assert len(reasons) <= 33 and "other" in reasons
    m.observe_relay_added(0.0003)
    m.observe_relay_added(0.002)
    assert value(m, "kt_relay_added_seconds_count") == 2
    assert value(m, "kt_relay_added_seconds_bucket", le="0.0005") == 1


def test_scrape_time_values_and_separate_registries() -> None:
    m = metrics()
    assert value(m, "kt_event_subscribers") == 0 and value(m, "kt_audit_queue_depth") == 0
    hub = EventHub(2)
    m.bind_event_hub(hub)
    m.set_audit_queue_depth_source(lambda: 17)
    sub = hub.subscribe()
    for i in range(5):
        hub.publish("s", BudgetAlert("s", 0.5, i, 20, False))
    assert value(m, "kt_event_subscribers") == 1
    assert value(m, "kt_event_dropped_total") == 3
    assert value(m, "kt_audit_queue_depth") == 17
    sub.close()
    assert value(m, "kt_event_subscribers") == 0
    # A second gateway's metrics start from zero: no shared global registry.
    other = metrics()
    m.handshake_rejected("x")
    assert value(other, "kt_handshake_rejections_total", reason="x") is None


def test_metrics_without_config() -> None:
    m = Metrics()
    m.sink("s", ResponseUsage("s", "t", "m", TokenUsage(input_tokens=3)))
    labels = {"gen_ai_token_type": "input", "gen_ai_request_model": "other", "target": "other", "team": "none"}
    assert value(m, "kt_gen_ai_client_token_usage_sum", **labels) == 3
