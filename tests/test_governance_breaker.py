"""Circuit breaker state machine and the upstream candidate order, with time passed in."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from kt_trio.governance.breaker import CircuitBreaker, UpstreamHealth
from kt_trio.records import BreakerTransition


def make(threshold: int = 5, recovery: float = 30.0) -> tuple[CircuitBreaker, list[BreakerTransition]]:
    seen: list[BreakerTransition] = []
    return CircuitBreaker("t1", threshold, recovery, on_transition=seen.append), seen


def open_it(b: CircuitBreaker, now: float) -> None:
    for _ in range(b.failure_threshold):
        p = b.acquire(now)
        assert p is not None
        b.record_failure(now, "dial refused", p)


def test_five_consecutive_failures_open_it() -> None:
    b, seen = make()
    for i in range(4):
        p = b.acquire(0.0)
        assert p is not None
        assert b.record_failure(0.0, f"refused {i}", p) is None
    assert b.state == "closed"
    p = b.acquire(1.0)
    assert p is not None
    t = b.record_failure(1.0, "refused 4", p)
    assert t == BreakerTransition("t1", "closed", "open", "5 consecutive failures; last: refused 4")
    assert b.state == "open"
    assert seen == [t]


def test_success_resets_the_consecutive_count() -> None:
    b, _ = make(threshold=3)
    for outcome in ["f", "f", "s", "f", "f"]:
        p = b.acquire(0.0)
        assert p is not None
        if outcome == "f":
            b.record_failure(0.0, "x", p)
        else:
            b.record_success(0.0, p)
    assert b.state == "closed"
    assert b.consecutive_failures == 2


def test_refused_while_open_then_exactly_one_trial() -> None:
    b, seen = make(recovery=30.0)
    open_it(b, 100.0)
    assert b.acquire(100.0) is None
    assert b.acquire(129.9) is None
    assert b.retry_after(110.0) == pytest.approx(20.0)
    trial = b.acquire(130.0)
    assert trial is not None and trial.trial
    assert b.state == "half_open"
    # A second caller during the trial is refused.
    assert b.acquire(130.0) is None
    assert b.acquire(131.0) is None
    assert not b.allow(131.0)
    assert [(t.from_state, t.to_state) for t in seen] == [("closed", "open"), ("open", "half_open")]


def test_trial_success_closes() -> None:
    b, seen = make()
    open_it(b, 0.0)
    trial = b.acquire(30.0)
    assert trial is not None
    t = b.record_success(30.5, trial)
    assert t is not None and (t.from_state, t.to_state, t.reason) == ("half_open", "closed", "trial dial succeeded")
    assert b.state == "closed"
    assert b.acquire(30.5) is not None
    assert b.acquire(30.5) is not None  # closed again: everyone may dial
    assert [(t.from_state, t.to_state) for t in seen] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_trial_failure_reopens_for_another_period() -> None:
    b, seen = make(recovery=10.0)
    open_it(b, 0.0)
    trial = b.acquire(10.0)
    assert trial is not None
    t = b.record_failure(11.0, "TLS failure", trial)
    assert t is not None and (t.from_state, t.to_state) == ("half_open", "open")
    assert "TLS failure" in t.reason
    assert b.acquire(20.9) is None  # open for a full period from the trial's failure
    assert b.retry_after(11.0) == pytest.approx(10.0)
    assert b.acquire(21.0) is not None
    # Each change reported exactly once.
    assert [(t.from_state, t.to_state) for t in seen] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
    ]


def test_stale_outcomes_do_not_move_the_breaker() -> None:
    b, seen = make(threshold=2)
    slow = b.acquire(0.0)  # a dial that started while closed...
    assert slow is not None
    open_it(b, 0.0)
    assert b.state == "open"
    b.record_success(1.0, slow)  # ...and succeeded after the breaker opened
    assert b.state == "open"
    trial = b.acquire(30.0)
    assert trial is not None
    b.record_failure(30.0, "late", slow)  # stale failure must not count against the trial
    assert b.state == "half_open"
    b.record_success(30.1, trial)
    assert b.state == "closed"
    assert len(seen) == 3


def test_abandoned_or_lost_trial_does_not_wedge_half_open() -> None:
    b, _ = make(recovery=30.0)
    open_it(b, 0.0)
    trial = b.acquire(30.0)
    assert trial is not None
    b.abandon(trial)  # the dialling task was cancelled before dialling
    again = b.acquire(30.0)
    assert again is not None and again.trial
    # Never reported at all: after the trial timeout another caller gets a trial.
    assert b.acquire(59.0) is None
    assert b.acquire(60.0) is not None


def test_permitless_api() -> None:
    b, _ = make(threshold=1, recovery=5.0)
    assert b.allow(0.0)
    b.record_failure(0.0, "boom")
    assert b.state == "open" and not b.allow(1.0)
    assert b.allow(5.0) and b.state == "half_open"
    b.record_success(5.0)
    assert b.state == "closed"


async def test_breaker_timing_under_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    b, _ = make(recovery=30.0)
    open_it(b, trio.current_time())
    assert b.acquire(trio.current_time()) is None
    await trio.sleep(29.0)
    assert b.acquire(trio.current_time()) is None
    await trio.sleep(1.0)
    assert b.acquire(trio.current_time()) is not None
    assert b.acquire(trio.current_time()) is None


# -- UpstreamHealth -------------------------------------------------------------------------------


def fail_target(h: UpstreamHealth, target: str, now: float) -> None:
    for _ in range(h.failure_threshold):
        p = h.acquire(target, now)
        assert p is not None
        h.record_failure(p, now, "dial refused")


def test_candidates_order_and_dedup() -> None:
    h = UpstreamHealth(5, 30.0)
    assert h.candidates("a", ["a", "b", "c"], ["c", "d"], 0.0) == ["a", "b", "c", "d"]


def test_candidates_skip_open_targets_and_fall_back() -> None:
    seen: list[BreakerTransition] = []
    h = UpstreamHealth(5, 30.0, on_transition=seen.append)
    fail_target(h, "a", 0.0)
    assert h.state("a") == "open"
    assert h.candidates("a", ["b"], ["fb"], 1.0) == ["b", "fb"]
    fail_target(h, "b", 2.0)
    assert h.candidates("a", ["b"], ["fb"], 3.0) == ["fb"]
    assert [t.target for t in seen] == ["a", "b"]
    # After a's recovery it is a candidate again (for its one trial), first in order.
    assert h.candidates("a", ["b"], ["fb"], 30.0) == ["a", "fb"]


def test_retry_after_is_earliest_half_open_rounded_up() -> None:
    h = UpstreamHealth(5, 30.0)
    fail_target(h, "a", 0.0)
    fail_target(h, "b", 10.0)
    assert h.candidates("a", ["b"], [], 12.5) == []
    assert h.retry_after(["a", "b"], 12.5) == 18  # a half-opens at 30: 17.5 s → 18
    assert h.retry_after(["a", "b"], 29.2) == 1
    assert h.retry_after(["b"], 12.5) == 28
    # Nothing open (candidates failed without opening yet): still a positive back-off.
    assert h.retry_after(["c"], 0.0) == 1
    assert h.retry_after([], 0.0) == 1


def test_half_open_trial_taken_by_another_session() -> None:
    h = UpstreamHealth(1, 10.0)
    fail_target(h, "a", 0.0)
    assert h.candidates("a", [], ["b"], 10.0) == ["a", "b"]
    first = h.acquire("a", 10.0)
    assert first is not None and first.trial
    # A second session that listed "a" a moment ago now finds the trial taken and moves on.
    assert h.acquire("a", 10.0) is None
    assert h.candidates("a", [], ["b"], 10.0) == ["b"]
    assert h.retry_after(["a"], 10.0) == 1
    h.record_success(first, 10.2)
    assert h.state("a") == "closed"
