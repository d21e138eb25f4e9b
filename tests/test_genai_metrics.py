"""`/metrics` under the GenAI semantic-convention names, read with prometheus-client's own parser
after real traffic: a Realtime session with two responses, a streamed chat completion through
the official openai SDK, and one that fails upstream."""

from __future__ import annotations

import json

import openai
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from kt_trio.mocks.http import HttpMockBehaviour, open_mock_http_upstream
from kt_trio.mocks.realtime import MockBehaviour
from kt_trio.records import Record, ResponseUsage
from tests.chat_fixtures import in_thread, openai_client
from tests.conftest import running
from tests.helpers import http_get, samples

REALTIME = (("gen_ai_operation_name", "realtime_inference"), ("gen_ai_provider_name", "openai"))
CHAT = (("gen_ai_operation_name", "chat"), ("gen_ai_provider_name", "openai"))


def labels(*pairs: tuple[str, str], **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((*pairs, *more.items())))


async def _response(ws: WebSocketConnection, request: dict[str, object] | None = None) -> None:
    await ws.send_message(json.dumps(request or {"type": "response.create"}))
    while json.loads(await ws.get_message())["type"] != "response.done":
        pass


async def test_genai_series_with_required_labels_after_real_traffic() -> None:
    usage: list[ResponseUsage] = []
    with trio.fail_after(60):
        async with open_mock_http_upstream(HttpMockBehaviour(chunks=["Hel", "lo"])) as http_mock:
            chat_target = (
                f"    - id: oa\n      provider: openai\n      model: gpt-4o-mini\n      base_url: {http_mock.url}/v1\n"
            )
            async with running(MockBehaviour(usage_step=10), providers_extra=chat_target) as gw:

                def keep(_sid: str | None, record: Record) -> None:
                    if isinstance(record, ResponseUsage):
                        usage.append(record)

                gw.gateway.reporter.add_sink(keep)
                async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as ws:
                    await _response(ws)
                    await _response(ws)
                    # A model no target is configured with is counted as `other`, never as itself.
                    await _response(ws, {"type": "response.create", "response": {"model": "made-up-model-9"}})
                client = openai_client(gw.base_url, "sk-anything")

                def stream() -> str:
                    chunks = client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
                    )
                    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

                assert await in_thread(stream) == "Hello"
                http_mock.behaviour.status = 500  # the provider now fails: the client's answer is an error

                def failing() -> int:
                    try:
                        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
                    except openai.APIStatusError as exc:
                        return exc.status_code
                    raise AssertionError("the failing upstream's error did not reach the client")

                failed_status = await in_thread(failing)
                await gw.gateway.wait_sessions(lambda n: n == 0)
                status, body = await http_get(gw.port, "/metrics")
    assert status == 200
    s = samples(body.decode())
    for (name, lbls), v in sorted(s.items()):
        if name.startswith("gen_ai_") and name.endswith(("_count", "_sum")):
            print(name, dict(lbls), v)

    realtime = [u for u in usage if u.target == "mock"]
    assert len(realtime) == 3
    known = realtime[:2]
    rt_model = labels(*REALTIME, gen_ai_request_model="gpt-realtime")
    assert s[("gen_ai_client_token_usage_count", labels(*rt_model, gen_ai_token_type="input"))] == 2
    assert s[("gen_ai_client_token_usage_sum", labels(*rt_model, gen_ai_token_type="input"))] == sum(
        u.usage.input_tokens for u in known
    )
    assert s[("gen_ai_client_token_usage_sum", labels(*rt_model, gen_ai_token_type="output"))] == sum(
        u.usage.output_tokens for u in known
    )
    other = labels(*REALTIME, gen_ai_request_model="other")
    assert s[("gen_ai_client_token_usage_count", labels(*other, gen_ai_token_type="input"))] == 1
    assert not any("made-up-model-9" in v for _, lbls in s for _, v in lbls)

    assert s[("gen_ai_client_operation_duration_seconds_count", labels(*rt_model, error_type=""))] == 2
    assert s[("gen_ai_client_operation_time_to_first_chunk_seconds_count", rt_model)] == 2
    assert s[("gen_ai_server_time_to_first_token_seconds_count", rt_model)] == 2
    assert 0 < s[("gen_ai_client_operation_time_to_first_chunk_seconds_sum", rt_model)]

    chat = labels(*CHAT, gen_ai_request_model="gpt-4o-mini")
    assert s[("gen_ai_client_token_usage_count", labels(*chat, gen_ai_token_type="input"))] == 1
    assert s[("gen_ai_client_token_usage_sum", labels(*chat, gen_ai_token_type="output"))] == 7
    assert s[("gen_ai_client_operation_duration_seconds_count", labels(*chat, error_type=""))] == 1
    assert s[("gen_ai_client_operation_time_to_first_chunk_seconds_count", chat)] == 1
    # The failed request: its duration under `error_type` = the status its client got; no first chunk.
    failed = labels(*chat, error_type=str(failed_status))
    assert failed_status >= 500 and s[("gen_ai_client_operation_duration_seconds_count", failed)] == 1
    # The kt_ names stay beside them.
    assert ("kt_gen_ai_client_token_usage_count", ()) not in s
    assert any(name == "kt_gen_ai_client_token_usage_count" for name, _ in s)
