"""Token bucket and per-session message rate limiter, with time passed in explicitly."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from kt_trio.governance.rate_limit import (
    MessageRateLimiter,
    RateDecision,
    TokenBucket,
)
from kt_trio.protocol.errors import rate_limit_error_event
from kt_trio.protocol.sniff import client_event_id


def test_default_burst_is_ten_seconds_of_allowance() -> None:
    assert TokenBucket(60).burst == 10
    assert TokenBucket(600).burst == 100
    assert TokenBucket(5).burst == 1  # never below one message
    assert TokenBucket(60, burst=3).burst == 3


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    b = TokenBucket(60, burst=3)  # one token per second
    assert [b.try_take(100.0) for _ in range(4)] == [True, True, True, False]
    assert b.delay_until(100.0) == pytest.approx(101.0)
    assert not b.try_take(100.5)
    assert b.delay_until(100.5) == pytest.approx(101.0)
    assert b.try_take(101.0)
    assert not b.try_take(101.0)
    # Idle time refills up to the burst, never beyond it.
    assert [b.try_take(200.0) for _ in range(4)] == [True, True, True, False]


def test_delay_until_is_now_when_a_token_is_available() -> None:
    b = TokenBucket(60, burst=2)
    assert b.delay_until(5.0) == 5.0


@pytest.mark.parametrize("bad", [0, -1])
def test_bucket_rejects_nonpositive_rate(bad: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(bad)


def test_reject_mode_and_exclusions() -> None:
    lim = MessageRateLimiter(60, "reject", ["input_audio_buffer.append"], burst=2)
    assert lim.check("response.create", 0.0) == RateDecision("allow")
    assert lim.check(None, 0.0).action == "allow"  # unsniffable messages count too
    assert lim.check("conversation.item.create", 0.0) == RateDecision("reject")
    # Excluded types never count and are never refused.
    for _ in range(100):
        assert lim.check("input_audio_buffer.append", 0.0).action == "allow"
    assert lim.check("response.create", 1.0).action == "allow"


def test_audio_appends_count_unless_excluded() -> None:
    lim = MessageRateLimiter(60, burst=1)
    assert lim.check("input_audio_buffer.append", 0.0).action == "allow"
    assert lim.check("input_audio_buffer.append", 0.0).action == "reject"


def test_delay_mode_reserves_in_order() -> None:
    lim = MessageRateLimiter(60, "delay", burst=1)
    assert lim.check("a", 10.0).action == "allow"
    d1 = lim.check("b", 10.0)
    assert d1.action == "delay" and d1.until == pytest.approx(11.0)
    # The sender waits until d1.until before reading on; the next message then waits its turn.
    d2 = lim.check("c", 11.0)
    assert d2.action == "delay" and d2.until == pytest.approx(12.0)
    assert lim.check("d", 13.0).action == "allow"


async def test_delay_mode_paces_messages_under_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    lim = MessageRateLimiter(120, "delay", burst=2)  # two per second, burst two
    sent: list[float] = []
    for _ in range(6):
        decision = lim.check("response.create", trio.current_time())
        if decision.action == "delay":
            assert decision.until is not None
            await trio.sleep_until(decision.until)
        sent.append(trio.current_time())
    start = sent[0]
    assert [round(t - start, 6) for t in sent] == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]


def test_invalid_mode() -> None:
    with pytest.raises(ValueError):
        MessageRateLimiter(60, "drop")  # type: ignore[arg-type]


def test_rate_limit_error_event_shape() -> None:
    raw = rate_limit_error_event("evt_client_1", 60, event_id="event_kt_x")
    assert json.loads(raw) == {
        "type": "error",
        "event_id": "event_kt_x",
        "error": {
            "type": "rate_limit_exceeded",
            "code": "rate_limit_exceeded",
            "message": "Rate limit of 60 messages per minute exceeded; the message was not forwarded.",
            "event_id": "evt_client_1",
        },
    }
    ev = json.loads(rate_limit_error_event(None))
    assert ev["error"]["event_id"] is None
    assert ev["event_id"].startswith("event_kt")


def test_client_event_id_sniffed_or_parsed() -> None:
    assert client_event_id(b'{"type":"response.create","event_id":"e1"}') == "e1"
    late = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 1000, "event_id": "e2"})
    assert client_event_id(late.encode()) == "e2"
    assert client_event_id(b'{"type":"response.create"}') is None
    assert client_event_id(b"not json") is None
