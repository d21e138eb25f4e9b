"""The Responses stream filter and the chat-to-Responses translator, as pure code (no sockets)."""

from __future__ import annotations

import json
from typing import Any

from kt_trio.chat.policy import ChatPolicies
from kt_trio.chat.responses_stream import ChatToResponses, ResponsesFilter
from kt_trio.config import load_config_text
from kt_trio.policies.chain import chain_of


def policies() -> ChatPolicies:
    return ChatPolicies(chain_of(load_config_text("policies:\n  chain: [pii-detector]\n")))


def events(out: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for b in out for line in b.decode().splitlines() if line.startswith("data: ")]


def test_a_held_back_tail_is_inserted_before_done_and_later_sequence_numbers_shift() -> None:
    filt = ResponsesFilter(policies())
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    out: list[bytes] = []
    for seq, delta in enumerate(["Call me at 415-5", "55-0132"], start=1):
        out += filt.on_object(
            {"type": "response.output_text.delta", "sequence_number": seq, **where, "delta": delta}, None
        )
    done = {"type": "response.output_text.done", "sequence_number": 3, **where, "text": "Call me at 415-555-0132"}
    out += filt.on_object(done, None)
    out += filt.on_object(
        {"type": "response.completed", "sequence_number": 4, "response": {"id": "r", "output": []}}, None
    )
    got = events(out)
    assert [e["sequence_number"] for e in got] == [1, 2, 3, 4, 5]
    assert (
        "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta") == "Call me at [REDACTED:PHONE]"
    )
    assert got[3]["text"] == "Call me at [REDACTED:PHONE]"
    assert filt.done


def test_chat_chunks_become_responses_events_with_one_output_index_per_item() -> None:
    tr = ChatToResponses("claude-test")
    chunk = {"id": "chatcmpl-x", "model": "claude-test", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    call = {"index": 0, "id": "call_1", "function": {"name": "dial", "arguments": '{"to":'}}
    more = {"index": 0, "function": {"arguments": ' "1"}'}}
    out = tr.feed(chunk)
    out += tr.feed({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
    out += tr.feed({"choices": [{"index": 0, "delta": {"tool_calls": [more]}, "finish_reason": "tool_calls"}]})
    out += tr.feed({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
    out += tr.end()
    kinds = [e["type"] for e in out]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in out] == list(range(1, len(out) + 1))
    done = [e for e in out if e["type"] == "response.output_item.done"]
    assert [(e["output_index"], e["item"]["type"]) for e in done] == [(0, "message"), (1, "function_call")]
    completed = out[-1]["response"]
    assert completed["output"][1]["arguments"] == '{"to": "1"}' and completed["usage"]["total_tokens"] == 5
