"""Cost in dollars (issue 18): the price table, and cost on usage events, audit records, the
session summary and `kt_cost_usd_total` for a Realtime session with text, cached and audio tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from trio_websocket import open_websocket_url

from conformance.mock_upstream import MockBehaviour, realtime_usage
from kt_trio.pricing import BUILTIN_PRICES, ModelPrice, Pricing, cost_usd
from kt_trio.records import TokenUsage
from tests.conftest import running
from tests.helpers import http_get, rows, samples

PRICE = ModelPrice(input=4.0, cached_input=0.4, output=16.0, audio_input=32.0, audio_output=64.0)


def test_cached_tokens_are_priced_once_and_audio_at_audio_rates() -> None:
    usage = TokenUsage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cached_tokens=300_000,
        cached_audio_tokens=100_000,
        input_audio_tokens=400_000,
        output_audio_tokens=250_000,
    )
    # text in: 600k of which 200k cached; audio in: 400k of which 100k cached.
    expected = 0.4 * 4.0 + 0.3 * 32.0 + 0.3 * 0.4 + 0.75 * 16.0 + 0.25 * 64.0
    assert cost_usd(usage, PRICE) == pytest.approx(expected)
    # Without a cached-audio split (chat, Responses), cached tokens come out of the text input.
    chat = TokenUsage(input_tokens=1000, output_tokens=500, cached_tokens=400)
    assert cost_usd(chat, PRICE) == pytest.approx((600 * 4.0 + 400 * 0.4 + 500 * 16.0) / 1e6)


def test_rates_default_to_the_text_rates_and_snapshots_take_their_family_price() -> None:
    plain = ModelPrice(input=1.0, output=2.0)
    usage = TokenUsage(input_tokens=10, output_tokens=10, cached_tokens=5, input_audio_tokens=5, output_audio_tokens=5)
    assert cost_usd(usage, plain) == pytest.approx((10 * 1.0 + 10 * 2.0) / 1e6)
    pricing = Pricing({"acme-voice": plain})
    assert pricing.price_of("gpt-4o-mini-2024-07-18") is BUILTIN_PRICES["gpt-4o-mini"]
    assert pricing.price_of("gpt-4o-2024-08-06") is BUILTIN_PRICES["gpt-4o"]
    assert pricing.price_of("acme-voice") is plain
    assert pricing.price_of("gpt-4oops") is None


def test_an_unpriced_model_is_reported_once_and_never_guessed() -> None:
    reported: list[str] = []
    pricing = Pricing(on_unpriced=reported.append)
    usage = TokenUsage(input_tokens=10, output_tokens=10)
    assert pricing.cost("llama-local", usage) is None
    assert pricing.cost("llama-local", usage) is None
    assert reported == ["llama-local"]


def _expected(behaviour: MockBehaviour, index: int, price: ModelPrice) -> float:
    raw = realtime_usage(behaviour, index)
    details, cached = raw["input_token_details"], raw["input_token_details"]["cached_tokens_details"]
    usage = TokenUsage(
        input_tokens=raw["input_tokens"],
        output_tokens=raw["output_tokens"],
        cached_tokens=details["cached_tokens"],
        cached_audio_tokens=cached["audio_tokens"],
        input_audio_tokens=details["audio_tokens"],
        output_audio_tokens=raw["output_token_details"]["audio_tokens"],
    )
    return cost_usd(usage, price)


async def _two_responses(gw: Any, **query: str) -> list[dict[str, Any]]:
    events = []
    async with open_websocket_url(f"ws://127.0.0.1:{gw.port}/ws/events") as sub:
        async with open_websocket_url(gw.ws_url(**query)) as ws:
            await ws.get_message()
            for _ in range(2):
                await ws.send_message(json.dumps({"type": "response.create"}))
                while json.loads(await ws.get_message())["type"] != "response.done":
                    pass
        while True:
            event = json.loads(await sub.get_message())
            events.append(event)
            if event["payload"].get("scope") == "session":
                return events


async def test_cost_on_events_audit_summary_and_metrics(tmp_path: Path) -> None:
    behaviour = MockBehaviour()
    # The config's own price for the mock's model wins over the built-in table.
    extra = (
        "pricing:\n  gpt-realtime:\n    input: 4\n    cached_input: 0.4\n    output: 16\n"
        "    audio_input: 32\n    audio_output: 64\n"
        "policy:\n  audit-logger:\n    log_all_access: false\n"
    )
    async with running(behaviour, chain=["audit-logger"], extra=extra, state_dir=tmp_path) as gw:
        events = await _two_responses(gw)
        await gw.gateway.wait_sessions(lambda n: n == 0)
        _, metrics_text = await http_get(gw.port, "/metrics")
    first, second = (_expected(behaviour, i, PRICE) for i in range(2))
    assert first > 0 and second > first  # the mock's usage grows per response
    usage = [e["payload"] for e in events if e["type"] == "usage"]
    per_response = [u["cost_usd"] for u in usage if u["scope"] == "response"]
    assert per_response == [pytest.approx(first), pytest.approx(second)]
    session = next(u for u in usage if u["scope"] == "session")
    assert session["cost_usd"] == pytest.approx(first + second)
    assert gw.gateway.recent_summaries[-1].cost_usd == pytest.approx(first + second)
    audited = [data for kind, _, data in rows(tmp_path) if kind == "usage"]
    assert [a["cost_usd"] for a in audited] == [pytest.approx(first), pytest.approx(second)]
    end = next(data for kind, _, data in rows(tmp_path) if kind == "session_end")
    assert end["cost_usd"] == pytest.approx(first + second)
    spent = samples(metrics_text.decode())
    assert spent[("kt_cost_usd_total", (("model", "gpt-realtime"), ("team", "none")))] == pytest.approx(first + second)


async def test_a_session_on_an_unpriced_model_costs_nothing_and_says_so_once() -> None:
    async with running(MockBehaviour()) as gw:
        # A model of the gpt family (routed to the mock by family) that no price names.
        events = await _two_responses(gw, model="gpt-voice-lab")
    unpriced = [e["payload"] for e in events if e["type"] == "system" and e["payload"]["event"] == "model_unpriced"]
    assert unpriced == [{"event": "model_unpriced", "model": "gpt-voice-lab"}]
    assert all(e["payload"]["cost_usd"] is None for e in events if e["type"] == "usage")
