"""Session budget: each threshold fires once, then new responses are blocked."""

from __future__ import annotations

import json

import pytest

from kt_trio.governance.budget import SessionBudget
from kt_trio.protocol.errors import budget_exceeded_error_event
from kt_trio.records import BudgetAlert, TokenUsage


def tokens(n: int) -> TokenUsage:
    return TokenUsage(input_tokens=n, total_tokens=n)


def test_thresholds_fire_once_each_then_block() -> None:
    b = SessionBudget(1000)
    assert b.add(tokens(400), "s") == []
    assert b.check_client_event("response.create")
    assert b.add(tokens(100), "s") == [BudgetAlert("s", 0.5, 500, 1000, False)]
    assert b.add(tokens(100), "s") == []  # 0.5 does not fire again
    assert b.add(tokens(250), "s") == [BudgetAlert("s", 0.8, 850, 1000, False)]
    assert not b.exceeded
    assert b.add(tokens(150), "s") == [BudgetAlert("s", 1.0, 1000, 1000, True)]
    assert b.exceeded
    assert b.add(tokens(500), "s") == []
    # Blocked: new responses. Everything else goes on.
    assert not b.check_client_event("response.create")
    assert b.check_client_event("input_audio_buffer.append")
    assert b.check_client_event("conversation.item.create")
    assert b.check_client_event(None)
    assert not b.close_required


def test_one_large_response_crosses_several_thresholds_in_order() -> None:
    b = SessionBudget(100, alert_thresholds=[1.0, 0.5, 0.8])
    alerts = b.add(tokens(120), "s")
    assert [a.threshold for a in alerts] == [0.5, 0.8, 1.0]
    assert all(a.used_tokens == 120 for a in alerts)
    assert b.add(tokens(1), "s") == []


def test_transcription_duration_counts_no_tokens_and_missing_total_is_filled() -> None:
    b = SessionBudget(100)
    assert b.add(TokenUsage(transcription_seconds=30.0), "s") == []
    assert b.add(TokenUsage(input_tokens=30, output_tokens=25), "s")[0].threshold == 0.5
    assert b.used_tokens == 55


def test_exact_threshold_despite_float_rounding() -> None:
    b = SessionBudget(100, alert_thresholds=[0.07])  # 0.07 * 100 == 7.000000000000001
    assert b.add(tokens(7), "s") == [BudgetAlert("s", 0.07, 7, 100, False)]


def test_close_action() -> None:
    b = SessionBudget(10, action="close")
    b.add(tokens(10), "s")
    assert b.close_required


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_total_tokens": 0},
        {"max_total_tokens": 10, "action": "warn"},
        {"max_total_tokens": 10, "alert_thresholds": [0]},
    ],
)
def test_invalid(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SessionBudget(**kwargs)  # type: ignore[arg-type]


def test_budget_exceeded_error_event_shape() -> None:
    ev = json.loads(budget_exceeded_error_event("evt_9", 1200, 1000, event_id="event_kt_b"))
    assert ev["type"] == "error" and ev["event_id"] == "event_kt_b"
    assert ev["error"]["type"] == ev["error"]["code"] == "budget_exceeded"
    assert ev["error"]["event_id"] == "evt_9"
    assert "1200 of 1000" in ev["error"]["message"]
