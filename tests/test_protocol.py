"""The protocol model: which fields of which event carry text, and the gateway's own events."""

from __future__ import annotations

import json

import pytest

from kt_trio.protocol import errors
from kt_trio.protocol.events import (
    AUDIO_TYPES,
    INPUT_TEXT_TYPES,
    REPEAT_TYPES,
    STREAM_DELTA,
    STREAM_DONE,
    input_slots,
    output_slots,
    part_key,
)
from kt_trio.protocol.sniff import sniff_type


def texts(slots):
    return [c[k] for c, k in slots]


def user_item(*parts):
    return {"type": "message", "role": "user", "content": list(parts)}


# --- client -> provider ---------------------------------------------------------------------


def test_conversation_item_create_input_text_and_transcript():
    ev = {
        "type": "conversation.item.create",
        "item": user_item(
            {"type": "input_text", "text": "hello"},
            {"type": "input_audio", "audio": "AAAA", "transcript": "spoken"},
        ),
    }
    assert texts(input_slots(ev)) == ["hello", "spoken"]  # never the base64 audio


def test_conversation_item_create_function_call_output_and_system_text():
    ev = {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c", "output": "{}"}}
    assert texts(input_slots(ev)) == ["{}"]
    ev = {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "be brief"}]},
    }
    assert texts(input_slots(ev)) == ["be brief"]
    # beta assistant items use "text" parts
    ev = {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]},
    }
    assert texts(input_slots(ev)) == ["hi"]


def test_session_update_instructions():
    ev = {"type": "session.update", "session": {"type": "realtime", "instructions": "You are kind.", "voice": "x"}}
    assert texts(input_slots(ev)) == ["You are kind."]


def test_realtime_response_create_instructions_and_input_items():
    ev = {
        "type": "response.create",
        "response": {
            "instructions": "answer in French",
            "input": [user_item({"type": "input_text", "text": "out of band"}), {"type": "item_reference", "id": "x"}],
        },
    }
    assert texts(input_slots(ev)) == ["answer in French", "out of band"]


def test_responses_mode_response_create_top_level_input():
    ev = {"type": "response.create", "model": "gpt-5", "instructions": "be terse", "input": "hello there"}
    assert texts(input_slots(ev)) == ["be terse", "hello there"]
    ev = {
        "type": "response.create",
        "input": [
            {"role": "user", "content": "plain string content"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "part"}]},
            {"type": "function_call_output", "call_id": "c", "output": "result"},
        ],
    }
    assert texts(input_slots(ev)) == ["plain string content", "part", "result"]


def test_rewriting_a_slot_changes_the_event():
    ev = {"type": "conversation.item.create", "item": user_item({"type": "input_text", "text": "a"})}
    ((container, key),) = input_slots(ev)
    container[key] = "b"
    assert ev["item"]["content"][0]["text"] == "b"


def test_events_without_text():
    for t in ("input_audio_buffer.commit", "input_audio_buffer.clear", "response.cancel", "conversation.item.delete"):
        assert t not in INPUT_TEXT_TYPES
        assert input_slots({"type": t}) == []


# --- provider -> client ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "field"),
    [
        ("response.output_text.delta", "delta"),
        ("response.text.delta", "delta"),
        ("response.output_audio_transcript.delta", "delta"),
        ("response.audio_transcript.delta", "delta"),
        ("conversation.item.input_audio_transcription.delta", "delta"),
        ("response.function_call_arguments.delta", "delta"),
        ("response.output_text.done", "text"),
        ("response.text.done", "text"),
        ("response.output_audio_transcript.done", "transcript"),
        ("response.audio_transcript.done", "transcript"),
        ("conversation.item.input_audio_transcription.completed", "transcript"),
        ("response.function_call_arguments.done", "arguments"),
    ],
)
def test_streamed_text_fields(t, field):
    assert t in STREAM_DELTA or t in STREAM_DONE
    assert texts(output_slots({"type": t, field: "x"})) == ["x"]


def test_response_done_output_items():
    ev = {
        "type": "response.done",
        "response": {
            "id": "r1",
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "said"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "wrote"}]},
                {"type": "function_call", "name": "f", "arguments": '{"a": 1}'},
            ],
        },
    }
    assert texts(output_slots(ev)) == ["said", "wrote", '{"a": 1}']


def test_conversation_item_events_and_content_parts():
    item = {"id": "i1", "type": "message", "role": "user", "content": [{"type": "input_audio", "transcript": "hi"}]}
    for t in ("conversation.item.created", "conversation.item.added", "conversation.item.done"):
        assert t in REPEAT_TYPES
        assert texts(output_slots({"type": t, "item": item})) == ["hi"]
    ev = {"type": "response.content_part.done", "part": {"type": "audio", "transcript": "t"}}
    assert texts(output_slots(ev)) == ["t"]


def test_responses_mode_completed_and_refusal():
    ev = {
        "type": "response.completed",
        "response": {
            "id": "r",
            "output": [
                {
                    "type": "message",
                    "content": [{"type": "output_text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
                }
            ],
        },
    }
    assert texts(output_slots(ev)) == ["a", "no"]
    assert texts(output_slots({"type": "response.refusal.delta", "delta": "n"})) == ["n"]


def test_part_key_separates_text_and_transcript_streams():
    ev = {"response_id": "r", "item_id": "i", "content_index": 0}
    assert part_key(ev, "text") != part_key(ev, "transcript")
    assert part_key(ev, "text") == ("text", "r", "i", 0)
    # Responses mode: no response_id in deltas
    assert part_key({"item_id": "i", "content_index": 1}, "text") == ("text", "", "i", 1)


def test_audio_types_are_sniffed_without_parsing():
    for t in AUDIO_TYPES:
        assert sniff_type(f'{{"type":"{t}","audio":"not json'.encode()) == t


# --- the gateway's own events ---------------------------------------------------------------


def test_policy_violation_shape_per_design():
    ev = json.loads(errors.policy_violation("pii-detector", "PII detected: SSN", client_event_id="evt_1"))
    assert set(ev) == {"type", "event_id", "error"}
    assert ev["type"] == "error" and ev["event_id"].startswith("event_")
    assert ev["error"] == {
        "type": "policy_violation",
        "code": "pii-detector",
        "message": "PII detected: SSN",
        "event_id": "evt_1",
    }


def test_invalid_request_shape():
    ev = json.loads(errors.invalid_request("bad"))
    assert ev["type"] == "error"
    assert ev["error"]["type"] == "invalid_request_error"
    assert ev["error"]["message"] == "bad"
    assert "event_id" in ev["error"]


def test_responses_protocol_adds_status_and_param():
    ev = json.loads(errors.policy_violation("x", "m", protocol="responses"))
    assert ev["status"] == 400 and ev["error"]["param"] is None and ev["error"]["code"] == "x"


def test_response_cancel_names_the_response():
    ev = json.loads(errors.response_cancel("resp_1"))
    assert ev["type"] == "response.cancel" and ev["response_id"] == "resp_1"


def test_generated_events_are_compact_utf8():
    raw = errors.policy_violation("p", "naïve — ✓")
    assert b" " not in raw.split(b'"message"')[0]  # compact separators
    assert "naïve — ✓".encode() in raw  # not ASCII-escaped
