"""EventHub: record → message mapping, lag semantics, filters. No sockets: the hub is sync fan-out."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

import kt_trio.events.hub as hub_module
from kt_trio.events import EventHub, SystemEvent
from kt_trio.events.hub import Subscription
from kt_trio.events.messages import encode, rfc3339
from kt_trio.records import (
    BreakerTransition,
    BudgetAlert,
    MessageSeen,
    PolicyDecision,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
    TokenUsage,
)

T0 = 1_800_000_000.25


def budget(i: int, session_id: str = "s1") -> BudgetAlert:
    """A small record whose `used_tokens` numbers it, so order and loss are visible."""
    return BudgetAlert(session_id, 0.5, i, 1000, False)


def drain(sub: Subscription) -> list[dict[str, Any]]:
    out = []
    while (text := sub.receive_nowait()) is not None:
        out.append(json.loads(text))
    return out


def summary(**kw: Any) -> SessionSummary:
    base: dict[str, Any] = dict(
        session_id="s1",
        route="/v1/realtime",
        target="mock",
        model="gpt-realtime",
        client_ip="127.0.0.1",
        started_at=T0,
        duration_secs=1.5,
        messages_in=3,
        messages_out=7,
        bytes_in=300,
        bytes_out=700,
        close_code=1000,
        close_reason="bye",
        closed_by="client",
        usage=TokenUsage(input_tokens=10, output_tokens=20, total_tokens=30),
    )
    base.update(kw)
    return SessionSummary(**base)


def test_message_shapes() -> None:
    hub = EventHub(16, clock=lambda: T0)
    sub = hub.subscribe()
    hub.publish("s1", SessionStarted("s1", "/v1/realtime", "mock", "gpt-realtime", "10.0.0.1", T0, "ua/1"))
    hub.publish("s1", PolicyDecision("pii-detector", "redact", "input", "pii found", None, ("PHONE",), "x", "e1"))
    hub.publish("s1", ResponseUsage("s1", "mock", "gpt-realtime", TokenUsage(input_tokens=5), "resp_1"))
    hub.publish("s1", BudgetAlert("s1", 1.0, 1200, 1000, True))
    hub.publish(None, BreakerTransition("mock", "closed", "open", "5 consecutive failures"))
    hub.publish(None, SystemEvent("startup", {"version": "0.1.0"}))
    hub.publish("s1", summary())
    messages = drain(sub)
    assert [(m["type"], m["payload"].get("event") or m["payload"].get("scope")) for m in messages] == [
        ("audit", "session_start"),
        ("audit", "policy_decision"),
        ("usage", "response"),
        ("budget", "exceeded"),
        ("circuit_breaker", None),
        ("system", "startup"),
        ("audit", "session_end"),
        ("usage", "session"),
    ]
    assert all(m["ts"] == "2027-01-15T08:00:00.250Z" == rfc3339(T0) for m in messages)
    decision = messages[1]["payload"]
    assert decision["session_id"] == "s1" and decision["redacted_kinds"] == ["PHONE"]
    assert messages[2]["payload"]["usage"]["input_tokens"] == 5
    assert messages[4]["payload"] == {
        "target": "mock",
        "from": "closed",
        "to": "open",
        "reason": "5 consecutive failures",
    }
    assert messages[7]["payload"]["usage"]["total_tokens"] == 30
    assert messages[6]["payload"]["close_code"] == 1000


def test_message_seen_is_not_published_and_content_never_appears() -> None:
    hub = EventHub(16)
    sub = hub.subscribe()
    hub.publish("s1", MessageSeen("s1", 1, "input", "conversation.item.create", "e1", 99, True, (), "my secret text"))
    assert sub.receive_nowait() is None


def test_full_buffer_drops_oldest_and_reports_exact_lag() -> None:
    hub = EventHub(4)
    sub = hub.subscribe()
    for i in range(10):
        hub.publish("s1", budget(i))
    messages = drain(sub)
    assert messages[0]["type"] == "lagged" and messages[0]["payload"] == {"missed": 6}
    assert [m["payload"]["used_tokens"] for m in messages[1:]] == [6, 7, 8, 9]  # the newest survive
    assert hub.dropped_total == 6 == sub.dropped
    # Caught up: no second lagged, and a new lag is counted afresh.
    for i in range(10, 15):
        hub.publish("s1", budget(i))
    messages = drain(sub)
    assert messages[0]["payload"] == {"missed": 1}
    assert [m["payload"]["used_tokens"] for m in messages[1:]] == [11, 12, 13, 14]


def test_never_reading_subscriber_does_not_hold_up_publish() -> None:
    hub = EventHub(1024)
    slow = hub.subscribe()
    fast = hub.subscribe()
    fast_seen = 0
    for i in range(10_000):
        hub.publish("s1", budget(i))  # sync: it returning at all is the point
        if fast.receive_nowait() is not None:
            fast_seen += 1
    assert fast_seen == 10_000 and fast.dropped == 0
    messages = drain(slow)
    assert messages[0] == {"type": "lagged", "ts": messages[0]["ts"], "payload": {"missed": 10_000 - 1024}}
    assert [m["payload"]["used_tokens"] for m in messages[1:]] == list(range(10_000 - 1024, 10_000))


def test_filters_by_type_and_session() -> None:
    hub = EventHub(16)
    usage_only = hub.subscribe(types=["usage", "budget"])
    one_session = hub.subscribe(session_id="s2")
    hub.publish("s1", summary())
    hub.publish("s2", summary(session_id="s2"))
    hub.publish("s2", budget(1, "s2"))
    hub.publish(None, BreakerTransition("mock", "closed", "open", "x"))
    assert [(m["type"], m["payload"]["session_id"]) for m in drain(usage_only)] == [
        ("usage", "s1"),
        ("usage", "s2"),
        ("budget", "s2"),
    ]
    # A session filter delivers only that session's events: breaker events belong to no session.
    assert [m["type"] for m in drain(one_session)] == ["audit", "usage", "budget"]
    with pytest.raises(ValueError, match="nonsense"):
        hub.subscribe(types=["usage", "nonsense"])


def test_lagged_ignores_the_type_filter() -> None:
    hub = EventHub(2)
    sub = hub.subscribe(types=["budget"])
    for i in range(5):
        hub.publish("s1", budget(i))
    assert drain(sub)[0]["payload"] == {"missed": 3}


def test_serialised_once_per_publish_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[str] = []

    def counting_encode(*args: Any) -> str:
        encoded.append(text := encode(*args))
        return text

    monkeypatch.setattr(hub_module, "encode", counting_encode)
    hub = EventHub(4)
    subs = [hub.subscribe() for _ in range(3)]
    hub.publish("s1", budget(1))
    texts = [s.receive_nowait() for s in subs]
    assert texts[0] is texts[1] is texts[2]
    assert len(encoded) == 1 and encoded[0] is texts[0]
    encoded.clear()
    nobody = EventHub(4)
    system_only = nobody.subscribe(types=["system"])
    nobody.publish("s1", budget(1))  # no subscriber wants it: nothing encoded, nothing buffered
    assert encoded == []
    assert system_only.pending == 0 and system_only.receive_nowait() is None
    assert nobody.dropped_total == 0


def test_close_unsubscribes_and_counts() -> None:
    hub = EventHub(4)
    with hub.subscribe() as sub:
        assert hub.subscriber_count == 1
    assert hub.subscriber_count == 0 and sub.closed
    hub.publish("s1", budget(1))
    assert sub.receive_nowait() is None


async def test_receive_waits_for_a_publish_and_ends_on_hub_close() -> None:
    hub = EventHub(4)
    sub = hub.subscribe()
    got: list[str] = []

    async def reader() -> None:
        while True:
            try:
                got.append(json.loads(await sub.receive())["type"])
            except trio.EndOfChannel:
                got.append("end")
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        hub.publish(None, SystemEvent("shutdown"))
        hub.close()  # what was published before close is still delivered
    assert got == ["system", "end"]
    assert hub.subscribe().closed  # after close, a subscription is born closed
