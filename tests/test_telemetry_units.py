"""Pure parts of `kt_trio.telemetry`: the response clock, failed-response errors, the on/off
switch, and the config key's validation."""

from __future__ import annotations

import json

import pytest

from kt_trio.config import load_config_text
from kt_trio.config.errors import ConfigError
from kt_trio.records import TokenUsage
from kt_trio.telemetry import tracing_wanted
from kt_trio.telemetry.clock import Lap, ResponseClock, response_error
from kt_trio.telemetry.genai import provider_name, usage_attributes


def test_clock_times_a_response_from_the_clients_ask() -> None:
    clock = ResponseClock()
    clock.asked(10.0)
    clock.created(10.5)
    assert clock.awaiting_chunk
    clock.chunk(10.75)
    clock.chunk(11.0)  # only the first delta counts
    assert not clock.awaiting_chunk
    assert clock.finished(12.0) == Lap(2.0, 0.75)
    assert clock.finished(13.0) is None  # nothing open, nothing asked


def test_clock_times_a_server_started_response_from_its_announcement() -> None:
    clock = ResponseClock()
    clock.created(5.0)
    assert clock.finished(6.0) == Lap(1.0, None)  # no delta: no time to first chunk


def test_clock_pairs_queued_asks_in_order() -> None:
    clock = ResponseClock()
    clock.asked(1.0)
    clock.asked(2.0)
    clock.created(3.0)
    assert clock.finished(4.0) == Lap(3.0, None)
    clock.created(5.0)  # the second ask's response
    clock.chunk(5.5)
    assert clock.finished(6.0) == Lap(4.0, 3.5)


def test_response_error_names_a_failed_response_only() -> None:
    failed = {
        "type": "response.done",
        "response": {"status": "failed", "status_details": {"error": {"type": "server_error", "code": "x"}}},
    }
    assert response_error("response.done", json.dumps(failed).encode()) == "server_error"
    ok = {"type": "response.done", "response": {"status": "completed"}}
    assert response_error("response.done", json.dumps(ok).encode()) is None
    bare = {"type": "response.failed", "response": {"status": "failed"}}
    assert response_error("response.failed", json.dumps(bare).encode()) == "failed"
    assert response_error("response.output_text.delta", b'{"delta":"failed"}') is None


def test_tracing_switch_follows_config_and_standard_variables() -> None:
    assert not tracing_wanted(None, {})
    assert tracing_wanted("http://127.0.0.1:4318", {})
    assert tracing_wanted(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_wanted(None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing_wanted("http://127.0.0.1:4318", {"OTEL_SDK_DISABLED": "true"})
    assert not tracing_wanted("http://127.0.0.1:4318", {"OTEL_TRACES_EXPORTER": "none"})


def test_genai_names() -> None:
    assert [provider_name(p) for p in ("openai", "azure-openai", "anthropic")] == [
        "openai",
        "azure.ai.openai",
        "anthropic",
    ]
    attrs = usage_attributes(TokenUsage(input_tokens=10, output_tokens=4, cached_tokens=3, output_audio_tokens=2))
    assert attrs == {
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.audio.output_tokens": 2,
    }


def test_otlp_endpoint_must_be_an_http_base_url() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("observability:\n  otlp_endpoint: collector:4317\n", "gw.yaml")
    message = str(info.value)
    assert "gw.yaml:2:" in message and "observability.otlp_endpoint" in message
    assert load_config_text("observability:\n  otlp_endpoint: https://otel.example:4318\n", "gw.yaml")
