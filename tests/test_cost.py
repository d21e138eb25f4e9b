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
from tests.helpers import bearer, http_get, make_key, rows, samples

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


# The mock's two responses priced by hand at PRICE (the built-in `gpt-realtime` row), so the
# figures do not come from the code under test. The first: 120 input tokens of which 40 audio,
# 64 cached of which 16 audio; 48 output tokens of which 30 audio. The second: one more text token
# each way. Every kind has its own rate: uncached text in, uncached audio in, cached (text and
# audio alike), text out, audio out.
FIRST = (32 * 4.0 + 24 * 32.0 + 64 * 0.4 + 18 * 16.0 + 30 * 64.0) / 1e6  # $0.0031296
SECOND = (33 * 4.0 + 24 * 32.0 + 64 * 0.4 + 19 * 16.0 + 30 * 64.0) / 1e6  # $0.0031496


async def _two_responses(gw: Any, key: str | None = None, **query: str) -> list[dict[str, Any]]:
    events = []
    async with open_websocket_url(f"ws://127.0.0.1:{gw.port}/ws/events") as sub:
        async with open_websocket_url(gw.ws_url(**query), extra_headers=bearer(key) if key else []) as ws:
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
    assert realtime_usage(behaviour, 0)["input_token_details"] == {
        "text_tokens": 80,
        "audio_tokens": 40,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 48, "audio_tokens": 16, "image_tokens": 0},
    }
    assert realtime_usage(behaviour, 0)["output_token_details"] == {"text_tokens": 18, "audio_tokens": 30}
    key = make_key(tmp_path, "voice-app", team="blue")
    # The config's own price for the mock's model wins over the built-in table.
    extra = (
        "pricing:\n  gpt-realtime:\n    input: 4\n    cached_input: 0.4\n    output: 16\n"
        "    audio_input: 32\n    audio_output: 64\n"
        "policy:\n  audit-logger:\n    log_all_access: false\n"
    )
    async with running(behaviour, chain=["audit-logger"], extra=extra, state_dir=tmp_path) as gw:
        events = await _two_responses(gw, key)
        await gw.gateway.wait_sessions(lambda n: n == 0)
        _, metrics_text = await http_get(gw.port, "/metrics")
    first, second = FIRST, SECOND
    assert PRICE == BUILTIN_PRICES["gpt-realtime"]  # the override equals the table's row
    usage = [e["payload"] for e in events if e["type"] == "usage"]
    per_response = [u["cost_usd"] for u in usage if u["scope"] == "response"]
    assert per_response == [pytest.approx(first), pytest.approx(second)]
    assert {(u["key_name"], u["team"]) for u in usage} == {("voice-app", "blue")}
    session = next(u for u in usage if u["scope"] == "session")
    assert session["cost_usd"] == pytest.approx(first + second)
    assert gw.gateway.recent_summaries[-1].cost_usd == pytest.approx(first + second)
    audited = [data for kind, _, data in rows(tmp_path) if kind == "usage"]
    assert [a["cost_usd"] for a in audited] == [pytest.approx(first), pytest.approx(second)]
    assert [a["usage"]["cached_audio_tokens"] for a in audited] == [16, 16]
    end = next(data for kind, _, data in rows(tmp_path) if kind == "session_end")
    assert end["cost_usd"] == pytest.approx(first + second)
    spent = samples(metrics_text.decode())
    assert spent[("kt_cost_usd_total", (("model", "gpt-realtime"), ("team", "blue")))] == pytest.approx(first + second)


async def test_a_session_on_an_unpriced_model_costs_nothing_and_says_so_once() -> None:
    async with running(MockBehaviour()) as gw:
        # A model of the gpt family (routed to the mock by family) that no price names.
        events = await _two_responses(gw, model="gpt-voice-lab")
    unpriced = [e["payload"] for e in events if e["type"] == "system" and e["payload"]["event"] == "model_unpriced"]
    assert unpriced == [{"event": "model_unpriced", "model": "gpt-voice-lab"}]
    assert all(e["payload"]["cost_usd"] is None for e in events if e["type"] == "usage")
