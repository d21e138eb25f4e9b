"""Connection governance on live sessions: per-IP limits, breaker and fallback, rate limit, usage,
session budgets. Real gateway, mock providers and clients on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from kt_trio.config import load_config_text
from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream, realtime_usage, transcription_usage
from kt_trio.records import BreakerTransition, BudgetAlert, ResponseUsage
from kt_trio.server.gateway import Gateway
from kt_trio.testing import RunningGateway, serve_gateway
from tests.conftest import running
from tests.helpers import rejected


async def respond(ws: Any, kind: str = "response.done") -> dict[str, Any]:
    await ws.send_message(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] in (kind, "error"):
            return event


# -- per-IP limit ----------------------------------------------------------------------------------


async def test_sixth_session_from_one_ip_gets_429_and_counters_return_to_zero() -> None:
    extra = "  rate_limit:\n    per_ip:\n      connections: 5\n"
    async with running(MockBehaviour(mode="echo"), target_extra="", extra="", providers_extra=extra) as gw:
        admission = gw.gateway.admission
        async with trio.open_nursery() as nursery:
            release = trio.Event()
            opened = trio.Semaphore(0)

            async def hold() -> None:
                async with open_websocket_url(gw.ws_url()) as ws:
                    await ws.send_message("hi")
                    await ws.get_message()
                    opened.release()
                    await release.wait()

            for _ in range(5):
                nursery.start_soon(hold)
            for _ in range(5):
                await opened.acquire()
            assert admission.active("127.0.0.1") == 5
            rejection = await rejected(gw.ws_url())
            assert rejection.status_code == 429
            assert dict(rejection.headers).get(b"retry-after") == b"1"
            release.set()
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert admission.total_active == 0 and admission.active("127.0.0.1") == 0
        # Capacity is back: a new session is admitted.
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("again")
            assert await ws.get_message() == "again"


async def test_forwarded_for_is_ignored_from_untrusted_peers() -> None:
    extra = "  rate_limit:\n    per_ip:\n      connections: 1\n"
    async with running(MockBehaviour(mode="echo"), providers_extra=extra) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=[("X-Forwarded-For", "203.0.113.7")]) as ws:
            await ws.send_message("x")
            await ws.get_message()
            # A spoofed header does not buy a second slot: the peer is 127.0.0.1 either way.
            rejection = await rejected(gw.ws_url())
            assert rejection.status_code == 429


# -- circuit breaker and fallback ------------------------------------------------------------------


def two_target_config(bad_url: str, good_url: str | None, *, recovery: float = 30) -> str:
    good = (
        f"    - id: good\n      provider: openai\n      model: gpt-realtime\n      base_url: {good_url}/v1/realtime\n"
        if good_url
        else ""
    )
    return (
        "providers:\n  targets:\n"
        f"    - id: bad\n      provider: openai\n      model: gpt-realtime\n      base_url: {bad_url}/v1/realtime\n"
        + good
        + f"  circuit_breaker:\n    failure_threshold: 5\n    recovery_timeout_secs: {recovery}\n"
        + "policies:\n  chain: []\n"
    )


@asynccontextmanager
async def gateway_for(yaml: str) -> AsyncIterator[RunningGateway]:
    with trio.fail_after(60):
        async with serve_gateway(Gateway(load_config_text(yaml, "breaker.yaml"))) as gw:
            yield gw


# The breaker reads trio.current_time(): under pytest-trio's MockClock running at real speed
# (`rate = 1`, so sockets and the gateway's own timeouts behave as usual) a long recovery period
# is passed with `jump` instead of a sleep. Nothing can race it: the refusals that must see the
# breaker open come long before RECOVERY could run out, and only the jump ends it.
RECOVERY = 30


async def test_breaker_opens_after_five_failures_then_lets_one_trial_through(
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.rate = 1
    async with open_mock_upstream(MockBehaviour(reject_status=503)) as bad:
        async with gateway_for(two_target_config(bad.url, None, recovery=RECOVERY)) as gw:
            transitions: list[BreakerTransition] = []
            gw.gateway.reporter.add_sink(
                lambda sid, rec: transitions.append(rec) if isinstance(rec, BreakerTransition) else None
            )
            for _ in range(5):
                assert (await rejected(gw.ws_url())).status_code == 502
            assert bad.handshake_count == 5
            sixth = await rejected(gw.ws_url())
            assert sixth.status_code == 503
            assert 1 <= int(dict(sixth.headers)[b"retry-after"]) <= RECOVERY  # when it turns half-open
            assert bad.handshake_count == 5  # no dial reached the provider
            assert [(t.from_state, t.to_state) for t in transitions] == [("closed", "open")]

            mock_clock.jump(RECOVERY)  # the configured recovery period passes
            results = []

            async def client() -> None:
                results.append((await rejected(gw.ws_url())).status_code)

            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(client)
            # A breaker that never recovered would have refused all three without a dial.
            assert bad.handshake_count == 6  # exactly one trial dial
            assert sorted(results) == [502, 503, 503]
            assert [(t.from_state, t.to_state) for t in transitions][-2:] == [
                ("open", "half_open"),
                ("half_open", "open"),
            ]


async def test_trial_success_closes_the_breaker(mock_clock: trio.testing.MockClock) -> None:
    mock_clock.rate = 1
    async with open_mock_upstream(MockBehaviour(reject_status=500)) as flaky:
        async with gateway_for(two_target_config(flaky.url, None, recovery=RECOVERY)) as gw:
            for _ in range(5):
                await rejected(gw.ws_url())
            assert (await rejected(gw.ws_url())).status_code == 503
            assert gw.gateway.health.state("bad") == "open"
            flaky.behaviour = MockBehaviour()
            assert (await rejected(gw.ws_url())).status_code == 503  # healthy again, but still open
            mock_clock.jump(RECOVERY)
            async with open_websocket_url(gw.ws_url()) as ws:
                assert json.loads(await ws.get_message())["type"] == "session.created"
            assert gw.gateway.health.state("bad") == "closed"
            assert flaky.handshake_count == 6  # the five failures and the one trial, nothing between


async def test_fallback_to_a_second_target_of_the_same_model() -> None:
    async with open_mock_upstream(MockBehaviour(reject_status=503)) as bad:
        async with open_mock_upstream(MockBehaviour()) as good:
            async with gateway_for(two_target_config(bad.url, good.url)) as gw:
                for _ in range(7):
                    async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as ws:
                        assert json.loads(await ws.get_message())["type"] == "session.created"
                # Five dials failed on the first target, then its breaker skipped it.
                assert bad.handshake_count == 5
                assert len(good.connections) == 7


async def test_non_health_refusal_is_passed_on_without_fallback() -> None:
    async with open_mock_upstream(MockBehaviour(reject_status=401)) as bad:
        async with open_mock_upstream(MockBehaviour()) as good:
            async with gateway_for(two_target_config(bad.url, good.url)) as gw:
                for _ in range(6):
                    assert (await rejected(gw.ws_url())).status_code == 502
                assert bad.handshake_count == 6 and gw.gateway.health.state("bad") == "closed"
                assert good.handshake_count == 0


# -- message rate limit ----------------------------------------------------------------------------


async def test_messages_over_the_rate_limit_get_an_error_event() -> None:
    extra = "  rate_limit:\n    per_connection:\n      messages_per_minute: 6\n"  # burst 1
    async with running(MockBehaviour(mode="echo"), providers_extra=extra) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message(json.dumps({"type": "conversation.item.create", "event_id": "first"}))
            assert json.loads(await ws.get_message())["event_id"] == "first"  # echoed by the mock
            await ws.send_message(json.dumps({"type": "conversation.item.create", "event_id": "second"}))
            error = json.loads(await ws.get_message())
            assert error["type"] == "error"
            assert error["error"]["type"] == error["error"]["code"] == "rate_limit_exceeded"
            assert error["error"]["event_id"] == "second"
        assert len(gw.mock.connections[0].messages) == 1


async def test_excluded_types_are_not_limited() -> None:
    extra = (
        "  rate_limit:\n    per_connection:\n      messages_per_minute: 6\n"
        "      exclude_types: [input_audio_buffer.append]\n"
    )
    async with running(MockBehaviour(mode="echo"), providers_extra=extra) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            for i in range(20):
                audio = json.dumps({"type": "input_audio_buffer.append", "audio": f"AAAA{i}"})
                await ws.send_message(audio)
                assert await ws.get_message() == audio


# -- usage and budgets -----------------------------------------------------------------------------


async def test_usage_sums_every_response_and_transcription() -> None:
    behaviour = MockBehaviour(transcription_usage="tokens")
    async with running(behaviour) as gw:
        usage_records: list[ResponseUsage] = []
        gw.gateway.reporter.add_sink(
            lambda sid, rec: usage_records.append(rec) if isinstance(rec, ResponseUsage) else None
        )
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()
            for _ in range(3):
                assert (await respond(ws))["type"] == "response.done"
            await ws.send_message(json.dumps({"type": "input_audio_buffer.commit"}))
            while json.loads(await ws.get_message())["type"] != "conversation.item.input_audio_transcription.completed":
                pass
        await gw.gateway.wait_sessions(lambda n: n == 0)
        expected = [realtime_usage(behaviour, i) for i in range(3)]
        transcription = transcription_usage("tokens")
        total = gw.gateway.recent_summaries[-1].usage
        assert total.input_tokens == sum(u["input_tokens"] for u in expected) + transcription["input_tokens"]
        assert total.output_tokens == sum(u["output_tokens"] for u in expected) + transcription["output_tokens"]
        assert total.total_tokens == sum(u["total_tokens"] for u in expected) + transcription["total_tokens"]
        assert total.cached_tokens == sum(u["input_token_details"]["cached_tokens"] for u in expected)
        assert total.output_audio_tokens == sum(u["output_token_details"]["audio_tokens"] for u in expected)
        assert [r.kind for r in usage_records] == ["response"] * 3 + ["transcription"]
        assert gw.gateway.recent_summaries[-1].model == "gpt-realtime"


async def test_session_budget_alerts_once_each_then_blocks_response_create() -> None:
    # Each mock response uses 168, 170, ... tokens: 0.5 is crossed by the first response,
    # 0.8 and 1.0 by the second.
    extra = "policy:\n  session-budget:\n    max_total_tokens: 300\n"
    async with running(chain=["session-budget"], extra=extra) as gw:
        alerts: list[BudgetAlert] = []
        gw.gateway.reporter.add_sink(lambda sid, rec: alerts.append(rec) if isinstance(rec, BudgetAlert) else None)
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()
            assert (await respond(ws))["type"] == "response.done"
            assert [a.threshold for a in alerts] == [0.5]
            assert (await respond(ws))["type"] == "response.done"
            assert [a.threshold for a in alerts] == [0.5, 0.8, 1.0]
            blocked = await respond(ws)
            assert blocked["error"]["type"] == "budget_exceeded"
            # The rest of the session goes on.
            await ws.send_message(json.dumps({"type": "session.update", "session": {}}))
            assert json.loads(await ws.get_message())["type"] == "session.updated"
        assert [json.loads(m)["type"] for m in gw.mock.connections[0].messages].count("response.create") == 2
        assert len(alerts) == 3


async def test_session_budget_close_action_closes_with_1008() -> None:
    extra = "policy:\n  session-budget:\n    max_total_tokens: 100\n    action: close\n"
    async with running(chain=["session-budget"], extra=extra) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()
            await ws.send_message(json.dumps({"type": "response.create"}))
            kinds = []
            with pytest.raises(ConnectionClosed):
                while True:
                    kinds.append(json.loads(await ws.get_message())["type"])
            assert ws.closed.code == 1008
            assert "response.done" in kinds  # the response that crossed the budget was delivered


async def test_upstream_dropping_sessions_at_once_opens_the_breaker() -> None:
    behaviour = MockBehaviour(close_after=0, close_code=1011, close_reason="overloaded")
    async with open_mock_upstream(behaviour) as flaky:
        async with gateway_for(two_target_config(flaky.url, None)) as gw:
            for _ in range(5):
                async with open_websocket_url(gw.ws_url()) as ws:
                    with pytest.raises(ConnectionClosed):
                        while True:
                            await ws.get_message()
                await gw.gateway.wait_sessions(lambda n: n == 0)
            assert gw.gateway.health.state("bad") == "open"
            assert (await rejected(gw.ws_url())).status_code == 503
            assert flaky.handshake_count == 5


async def test_delay_mode_holds_messages_instead_of_dropping_them() -> None:
    # 600/min: a burst of 100, then one every 0.1 s.
    extra = "  rate_limit:\n    per_connection:\n      messages_per_minute: 600\n      mode: delay\n"
    async with running(MockBehaviour(mode="echo"), providers_extra=extra) as gw:
        async with open_websocket_url(gw.ws_url(), message_queue_size=200) as ws:
            start = trio.current_time()
            for i in range(105):
                await ws.send_message(json.dumps({"type": "conversation.item.create", "event_id": f"m{i}"}))
            got = [json.loads(await ws.get_message())["event_id"] for _ in range(105)]
            elapsed = trio.current_time() - start
        assert got == [f"m{i}" for i in range(105)]  # none dropped, none reordered, no error events
        # Five messages past the burst at 10 per second: the bucket cannot release them sooner.
        assert elapsed >= 0.4
