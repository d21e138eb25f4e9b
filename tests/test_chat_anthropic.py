"""`/v1/chat/completions` translated to Anthropic's Messages API, through the openai SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from kt_trio.chat import anthropic
from kt_trio.mocks.http import HttpMockBehaviour
from kt_trio.records import ResponseUsage
from tests.chat_fixtures import CLIENT_KEY, chat_rig, in_thread

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


async def test_non_streaming_translation_both_ways() -> None:
    async with chat_rig() as rig:

        def call():
            return rig.client().chat.completions.create(
                model="claude-test", messages=MESSAGES, stop="END", temperature=0.2
            )

        resp = await in_thread(call)
        assert resp.choices[0].message.content == "Hello, world!"
        assert resp.choices[0].finish_reason == "stop"
        assert resp.usage.prompt_tokens == 11 and resp.usage.completion_tokens == 7
        req = rig.mock.requests[0]
        assert req.path == "/v1/messages"
        assert req.headers["x-api-key"] == "sk-ant-target"
        assert req.headers["anthropic-version"] == anthropic.ANTHROPIC_VERSION
        assert "authorization" not in req.headers
        assert all(CLIENT_KEY not in v for v in req.headers.values())
        assert req.body["system"] == "Be brief."
        assert req.body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]}
        ]
        assert req.body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
        assert req.body["stop_sequences"] == ["END"] and req.body["temperature"] == 0.2
        assert req.body["model"] == "claude-test"


async def test_streaming_translation_with_usage() -> None:
    async with chat_rig(HttpMockBehaviour(chunks=["Bon", "jour", "!"])) as rig:

        def call() -> list:
            stream = rig.client().chat.completions.create(
                model="claude-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            return list(stream)

        chunks = await in_thread(call)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bonjour!"
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == ["stop"]
        assert chunks[-1].usage.prompt_tokens == 11 and chunks[-1].usage.completion_tokens == 7
        assert rig.mock.requests[0].body["stream"] is True
        usages = [r for _, r in rig.records if isinstance(r, ResponseUsage)]
        assert len(usages) == 1 and usages[0].target == "claude" and usages[0].usage.total_tokens == 18


async def test_pii_split_across_anthropic_deltas_is_redacted() -> None:
    async with chat_rig(HttpMockBehaviour(chunks=["mail me at jane.do", "e@example.org please"])) as rig:

        def call() -> str:
            stream = rig.client().chat.completions.create(model="claude-test", messages=MESSAGES, stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        assert await in_thread(call) == "mail me at [REDACTED:EMAIL] please"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_round_trip(stream: bool) -> None:
    behaviour = HttpMockBehaviour(chunks=[], tool_call=("get_weather", '{"city": "Paris"}'))
    async with chat_rig(behaviour) as rig:

        def first():
            client = rig.client()
            if not stream:
                return client.chat.completions.create(model="claude-test", messages=MESSAGES, tools=TOOLS)
            calls: dict[int, dict] = {}
            finish = None
            for c in client.chat.completions.create(model="claude-test", messages=MESSAGES, tools=TOOLS, stream=True):
                for tc in c.choices[0].delta.tool_calls or () if c.choices else ():
                    entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                    entry["id"] = tc.id or entry["id"]
                    if tc.function:
                        entry["name"] = tc.function.name or entry["name"]
                        entry["arguments"] += tc.function.arguments or ""
                if c.choices and c.choices[0].finish_reason:
                    finish = c.choices[0].finish_reason
            return calls, finish

        result = await in_thread(first)
        if stream:
            calls, finish = result
            call = calls[0]
            call_id, name, arguments = call["id"], call["name"], call["arguments"]
        else:
            finish = result.choices[0].finish_reason
            tc = result.choices[0].message.tool_calls[0]
            call_id, name, arguments = tc.id, tc.function.name, tc.function.arguments
        assert finish == "tool_calls"
        assert call_id == "toolu_mock1" and name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
        sent_tools = rig.mock.requests[0].body["tools"]
        assert sent_tools == [
            {
                "name": "get_weather",
                "input_schema": TOOLS[0]["function"]["parameters"],
                "description": "Weather for a city",
            }
        ]

        rig.mock.behaviour = HttpMockBehaviour(chunks=["It is sunny."])
        follow_up = [
            *MESSAGES,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "sunny, 24C"},
        ]

        def second():
            return rig.client().chat.completions.create(model="claude-test", messages=follow_up, tools=TOOLS)

        resp = await in_thread(second)
        assert resp.choices[0].message.content == "It is sunny."
        sent = rig.mock.requests[1].body["messages"]
        assert sent[1] == {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_mock1", "name": "get_weather", "input": {"city": "Paris"}}],
        }
        assert sent[2] == {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_mock1", "content": "sunny, 24C"}],
        }


async def test_rate_limit_stays_429_and_overloaded_becomes_503() -> None:
    async with chat_rig(HttpMockBehaviour(status=429)) as rig:

        def call() -> openai.APIStatusError:
            with pytest.raises(openai.APIStatusError) as info:
                rig.client().chat.completions.create(model="claude-test", messages=MESSAGES)
            return info.value

        err = await in_thread(call)
        assert err.status_code == 429 and err.response.json()["error"]["code"] == "rate_limit_error"
        rig.mock.behaviour = HttpMockBehaviour(status=529)
        err = await in_thread(call)
        assert err.status_code == 503 and err.response.json()["error"]["code"] == "overloaded_error"


async def test_error_event_mid_stream_becomes_an_error_chunk() -> None:
    async with chat_rig(HttpMockBehaviour(chunks=["a", "b", "c"], stream_error_after=2)) as rig:
        async with httpx.AsyncClient() as client:
            body = {"model": "claude-test", "messages": MESSAGES, "stream": True}
            resp = await client.post(rig.url + "/v1/chat/completions", json=body)
        assert '"code":"overloaded_error"' in resp.text
        assert resp.text.endswith("data: [DONE]\n\n")


def test_image_and_tool_choice_translation() -> None:
    from kt_trio.config.schema import Target

    target = Target(id="c", provider="anthropic", model="claude-x")
    body = {
        "model": "claude-x",
        "max_tokens": 99,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
                ],
            }
        ],
        "tools": TOOLS,
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    out = anthropic.to_messages_request(body, target)
    assert out["max_tokens"] == 99
    assert out["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert out["messages"][0]["content"][2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.org/cat.png"},
    }
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
