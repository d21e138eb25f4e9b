"""Usage extraction from provider events and per-session accumulation."""

from __future__ import annotations

import json
from typing import Any

from kt_trio.governance.usage import (
    MAX_MODELS_PER_SESSION,
    OTHER_MODEL,
    UsageAccumulator,
    model_from_event,
    usage_from_event,
)
from kt_trio.records import ResponseUsage, TokenUsage


def ev(obj: dict[str, Any]) -> tuple[str, bytes]:
    return obj["type"], json.dumps(obj).encode()


def realtime_done(rid: str, i: int, o: int, cached: int, audio_in: int = 0, audio_out: int = 0) -> tuple[str, bytes]:
    return ev(
        {
            "type": "response.done",
            "event_id": "event_1",
            "response": {
                "object": "realtime.response",
                "id": rid,
                "status": "completed",
                "output": [],
                "usage": {
                    "total_tokens": i + o,
                    "input_tokens": i,
                    "output_tokens": o,
                    "input_token_details": {
                        "text_tokens": i - audio_in,
                        "audio_tokens": audio_in,
                        "image_tokens": 0,
                        "cached_tokens": cached,
                        "cached_tokens_details": {"text_tokens": cached, "audio_tokens": 0, "image_tokens": 0},
                    },
                    "output_token_details": {"text_tokens": o - audio_out, "audio_tokens": audio_out},
                },
            },
        }
    )


def transcription_tokens(item: str) -> tuple[str, bytes]:
    return ev(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "event_t",
            "item_id": item,
            "content_index": 0,
            "transcript": "hello",
            "usage": {
                "type": "tokens",
                "input_tokens": 14,
                "output_tokens": 3,
                "total_tokens": 17,
                "input_token_details": {"text_tokens": 0, "audio_tokens": 14},
            },
        }
    )


def transcription_duration(item: str, seconds: float) -> tuple[str, bytes]:
    return ev(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "event_d",
            "item_id": item,
            "content_index": 0,
            "transcript": "hi",
            "usage": {"type": "duration", "seconds": seconds},
        }
    )


def test_realtime_response_done() -> None:
    got = usage_from_event(*realtime_done("resp_1", 100, 40, 64, audio_in=30, audio_out=25))
    assert got == (
        TokenUsage(
            input_tokens=100,
            output_tokens=40,
            total_tokens=140,
            cached_tokens=64,
            input_text_tokens=70,
            input_audio_tokens=30,
            output_text_tokens=15,
            output_audio_tokens=25,
        ),
        "resp_1",
        "response",
    )


def test_transcription_both_shapes() -> None:
    assert usage_from_event(*transcription_tokens("item_1")) == (
        TokenUsage(input_tokens=14, output_tokens=3, total_tokens=17, input_audio_tokens=14),
        "item_1",
        "transcription",
    )
    assert usage_from_event(*transcription_duration("item_2", 2.5)) == (
        TokenUsage(transcription_seconds=2.5),
        "item_2",
        "transcription",
    )


def test_responses_ws_completed() -> None:
    t, data = ev(
        {
            "type": "response.completed",
            "sequence_number": 9,
            "response": {
                "id": "resp_abc",
                "object": "response",
                "status": "completed",
                "model": "gpt-4.1-2025-04-14",
                "usage": {
                    "input_tokens": 328,
                    "input_tokens_details": {"cached_tokens": 256},
                    "output_tokens": 52,
                    "output_tokens_details": {"reasoning_tokens": 12},
                    "total_tokens": 380,
                },
            },
        }
    )
    assert usage_from_event(t, data) == (
        TokenUsage(input_tokens=328, output_tokens=52, total_tokens=380, cached_tokens=256),
        "resp_abc",
        "response",
    )


def test_no_usage_and_other_types() -> None:
    cancelled = ev({"type": "response.done", "response": {"id": "r", "status": "cancelled", "usage": None}})
    assert usage_from_event(*cancelled) is None
    assert usage_from_event("response.output_text.delta", b'{"type":"response.output_text.delta"}') is None
    assert usage_from_event("response.done", b"{not json") is None
    # Missing total and malformed counts: total filled in, junk read as zero.
    t, data = ev({"type": "response.done", "response": {"usage": {"input_tokens": 5, "output_tokens": True}}})
    got = usage_from_event(t, data)
    assert got is not None and got[0] == TokenUsage(input_tokens=5, total_tokens=5)


def test_session_sums_every_response_and_transcription() -> None:
    acc = UsageAccumulator("sess_1", "openai-rt", url_model="gpt-realtime")
    records: list[ResponseUsage] = []
    for event in [
        realtime_done("resp_1", 100, 40, 0, audio_in=60, audio_out=30),
        transcription_tokens("item_1"),
        realtime_done("resp_2", 200, 50, 128, audio_in=80, audio_out=40),
        transcription_duration("item_2", 1.5),
        realtime_done("resp_3", 300, 60, 256, audio_in=100, audio_out=50),
        ev({"type": "response.output_audio.delta", "delta": "AAAA"}),
    ]:
        r = acc.observe_server_event(*event)
        if r is not None:
            records.append(r)
    assert [(r.response_id, r.kind) for r in records] == [
        ("resp_1", "response"),
        ("item_1", "transcription"),
        ("resp_2", "response"),
        ("item_2", "transcription"),
        ("resp_3", "response"),
    ]
    assert all(r.session_id == "sess_1" and r.target == "openai-rt" for r in records)
    total = acc.total
    assert total.input_tokens == 600 + 14
    assert total.output_tokens == 150 + 3
    assert total.total_tokens == 750 + 17
    assert total.cached_tokens == 384
    assert total.input_audio_tokens == 240 + 14
    assert total.output_audio_tokens == 120
    assert total.input_text_tokens == 360
    assert total.output_text_tokens == 30
    assert total.transcription_seconds == 1.5
    assert (acc.responses, acc.transcriptions) == (3, 2)
    assert dict(acc.by_model) == {"gpt-realtime": total}


def test_model_precedence() -> None:
    acc = UsageAccumulator("s", "t", url_model="gpt-realtime")
    assert acc.model == "gpt-realtime"
    acc.observe_server_event(*ev({"type": "session.created", "session": {"model": "gpt-realtime-2025-08-28"}}))
    assert acc.model == "gpt-realtime-2025-08-28"
    # A later URL-level hint cannot override the server's statement.
    acc.note_model("url", "something-else")
    assert acc.model == "gpt-realtime-2025-08-28"
    acc.observe_client_event(
        *ev({"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime-mini"}})
    )
    assert acc.model == "gpt-realtime-mini"
    acc.observe_client_event(*ev({"type": "response.create", "model": "gpt-4.1"}))
    assert acc.model == "gpt-4.1"
    # The finished response's own model is the most specific, and is what usage is booked under.
    t, data = ev(
        {
            "type": "response.completed",
            "response": {"id": "r1", "model": "gpt-4.1-2025-04-14", "usage": {"input_tokens": 1, "output_tokens": 1}},
        }
    )
    rec = acc.observe_server_event(t, data)
    assert rec is not None and rec.model == "gpt-4.1-2025-04-14"
    # The next request's model supersedes the previous response's report.
    acc.observe_client_event(*ev({"type": "response.create", "model": "gpt-4.1-mini"}))
    assert acc.model == "gpt-4.1-mini"


def test_model_from_event_shapes() -> None:
    assert model_from_event(*ev({"type": "response.create", "response": {"model": "m1"}})) == ("response.create", "m1")
    assert model_from_event(*ev({"type": "session.updated", "session": {"model": "m2"}})) == ("session.update", "m2")
    assert model_from_event(*ev({"type": "session.update", "session": {}})) is None
    assert model_from_event("input_audio_buffer.append", b'{"type":"input_audio_buffer.append"}') is None


def test_per_model_map_is_bounded() -> None:
    acc = UsageAccumulator("s", "t")
    one = TokenUsage(input_tokens=1, total_tokens=1)
    for i in range(MAX_MODELS_PER_SESSION + 5):
        acc.add(one, f"r{i}", model=f"model-{i}")
    assert len(acc.by_model) == MAX_MODELS_PER_SESSION + 1
    assert acc.by_model[OTHER_MODEL].total_tokens == 5
    assert acc.total.total_tokens == MAX_MODELS_PER_SESSION + 5
    acc.note_model("response.create", "x" * 1000)
    assert len(acc.model) == 128
