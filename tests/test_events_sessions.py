"""Events and metrics fed by real sessions: gateway, mock provider and client on 127.0.0.1.

The hub and the metrics are attached to the gateway's reporter here, as the gateway will do.
"""

from __future__ import annotations

import json
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families
from trio_websocket import open_websocket_url

from kt_trio.events import EventHub
from kt_trio.events.hub import Subscription
from kt_trio.metrics import Metrics
from kt_trio.mocks.realtime import MockBehaviour
from kt_trio.records import PolicyDecision, Record, SessionStarted, SessionSummary
from tests.conftest import running

PHONE_ITEM = json.dumps(
    {
        "type": "conversation.item.create",
        "event_id": "evt_1",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "call +1 415-555-0132"}],
        },
    }
)


def drain(sub: Subscription) -> list[dict[str, Any]]:
    out = []
    while (text := sub.receive_nowait()) is not None:
        out.append(json.loads(text))
    return out


def metric(m: Metrics, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(m.render()[0].decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def test_subscriber_sees_audit_usage_and_breaker_events_from_a_session() -> None:
    async with running(chain=["pii-detector"]) as gw:
        hub = EventHub(1024)
        metrics = Metrics(gw.gateway.config)
        gw.gateway.reporter.add_sink(hub.publish)
        gw.gateway.reporter.add_sink(metrics.sink)
        sub = hub.subscribe()
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()  # session.created
            await ws.send_message(PHONE_ITEM)
            await ws.send_message(json.dumps({"type": "response.create"}))
            while json.loads(await ws.get_message())["type"] != "response.done":
                pass
        await gw.gateway.wait_sessions(lambda n: n == 0)
        breaker = gw.gateway.health.breaker("mock")
        for _ in range(5):
            breaker.record_failure(trio.current_time(), "test failure")

        messages = drain(sub)
        kinds = [(m["type"], m["payload"].get("event") or m["payload"].get("scope")) for m in messages]
        assert kinds[0] == ("audit", "session_start")
        assert ("audit", "policy_decision") in kinds and ("usage", "response") in kinds
        assert kinds[-3:] == [("audit", "session_end"), ("usage", "session"), ("circuit_breaker", None)]
        decision = next(m["payload"] for m in messages if m["payload"].get("event") == "policy_decision")
        assert decision["policy"] == "pii-detector" and decision["action"] == "redact"
        assert "415-555-0132" not in json.dumps(messages)  # never message content
        assert messages[-1]["payload"]["to"] == "open"

        summary = gw.gateway.recent_summaries[-1]
        assert (
            metric(metrics, "kt_sessions_total", route="/v1/realtime", target="mock", close_code="1000", team="none")
            == 1
        )
        assert metric(metrics, "kt_sessions_active") == 0
        assert metric(metrics, "kt_messages_total", direction="input") == summary.messages_in
        assert metric(metrics, "kt_message_bytes_total", direction="output") == summary.bytes_out
        assert metric(metrics, "kt_policy_decisions_total", policy="pii-detector", action="redact") >= 1  # type: ignore[operator]
        labels = {"gen_ai_request_model": "gpt-realtime", "target": "mock", "team": "none"}
        assert metric(metrics, "kt_gen_ai_client_token_usage_count", gen_ai_token_type="output", **labels) == 1
        assert (
            metric(metrics, "kt_gen_ai_client_token_usage_sum", gen_ai_token_type="input", **labels)
            == summary.usage.input_tokens
        )
        assert metric(metrics, "kt_circuit_breaker_state", target="mock") == 2


async def echo_session(gw: Any, n: int) -> None:
    """Sends `n` redactable messages through an echo provider, each echoed before the next."""
    async with open_websocket_url(gw.ws_url()) as ws:
        for i in range(n):
            await ws.send_message(PHONE_ITEM)
            assert "415-555-0132" not in await ws.get_message(), i
    await gw.gateway.wait_sessions(lambda k: k == 0)


async def test_a_never_reading_subscriber_does_not_slow_a_session() -> None:
    """A subscriber that never reads costs the session nothing it waits on: the session runs to
    its end (under the test deadline) while the subscriber's ring overflows, and the subscriber
    is told exactly what it lost. No timing: a publisher that waited on the subscriber would
    stall the session outright once the ring is full."""
    capacity = 64
    async with running(MockBehaviour(mode="echo"), chain=["pii-detector"]) as gw:
        hub = EventHub(capacity)
        gw.gateway.reporter.add_sink(hub.publish)
        audit_records = 0

        def count(session_id: str | None, record: Record) -> None:
            nonlocal audit_records
            if isinstance(record, PolicyDecision | SessionStarted | SessionSummary):
                audit_records += 1

        gw.gateway.reporter.add_sink(count)
        slow = hub.subscribe(types=["audit"])
        await echo_session(gw, 1000)  # never blocks on `slow`, which never reads during it
        assert audit_records > 1000  # a decision per message at least, plus start and end
        # The ring kept the newest `capacity`; every older one was dropped and counted.
        assert slow.pending == capacity
        assert slow.dropped == audit_records - capacity == hub.dropped_total
        messages = drain(slow)
        assert messages[0]["type"] == "lagged"
        assert messages[0]["payload"]["missed"] == slow.dropped  # the lagged count is exact
        assert len(messages) - 1 == capacity and messages[-1]["payload"]["event"] == "session_end"
        assert all(m["type"] == "audit" for m in messages[1:])
        assert slow.receive_nowait() is None and slow.pending == 0
