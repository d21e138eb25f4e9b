"""The external guardrail (DESIGN.md "Guardrail hook") against a mock service on 127.0.0.1: the
client alone (timeouts, failures, malformed answers, the concurrency bound), then end to end on a
WebSocket session and on /v1/chat/completions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import open_websocket_url

from conformance.mock_http_upstream import HttpMockBehaviour, open_mock_http_upstream
from conformance.mock_upstream import MockBehaviour
from kt_trio.config import load_config_text
from kt_trio.config.schema import ExternalGuardrailSettings
from kt_trio.guardrail.client import Context, Guardrail, parse_answer
from kt_trio.records import PolicyDecision
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import SECRETS, chat_config, in_thread, openai_client
from tests.conftest import running
from tests.guardrail_mock import SLOW, by_text, mock_guardrail
from tests.helpers import make_key
from tests.test_policy_sessions import next_of, user_item

CTX = Context(route="/v1/realtime", model="gpt-realtime", session_id="s1", key_name="app", team="voice")


def settings(url: str, **kw: Any) -> ExternalGuardrailSettings:
    return ExternalGuardrailSettings(url=url, **kw)


# --- the client ------------------------------------------------------------------------------


async def test_allow_block_and_redact_answers_and_what_is_sent() -> None:
    decide = by_text(
        {
            "bad": {"action": "block", "reason": "forbidden topic"},
            "token": {"action": "redact", "reason": "secret", "redactions": [{"start": 4, "end": 9, "kind": "secret"}]},
        }
    )
    async with mock_guardrail(decide) as mock:
        g = Guardrail(settings(mock.url, headers={"Authorization": "Bearer guard-secret"}))
        assert (await g.judge("hello", "input", CTX)).action == "allow"
        blocked = await g.judge("a bad idea", "output", CTX)
        assert (blocked.action, blocked.reason, blocked.failed) == ("block", "forbidden topic", False)
        redacted = await g.judge("the token is here", "input", CTX)
        assert redacted.apply("the token is here") == "the [REDACTED:SECRET] is here"
        await g.aclose()
    first = mock.seen[0]
    assert first.payload == {
        "text": "hello",
        "direction": "input",
        "route": "/v1/realtime",
        "model": "gpt-realtime",
        "session_id": "s1",
        "key_name": "app",
        "team": "voice",
    }
    assert first.headers["authorization"] == "Bearer guard-secret"
    assert mock.seen[1].payload["direction"] == "output"


@pytest.mark.parametrize(
    "answer",
    [
        500,  # failing
        503,
        b"not json at all",  # malformed
        b"[1, 2]",
        b'{"action": "maybe"}',
        b'{"action": "redact", "redactions": [{"start": 3, "end": 99, "kind": "X"}]}',  # outside the text
        b'{"action": "redact", "redactions": [{"start": 0, "end": 4}, {"start": 2, "end": 5}]}',  # overlapping
        b'{"action": "redact"}',
    ],
)
async def test_failing_and_malformed_answers_are_decided_by_on_error(answer: Any) -> None:
    async with mock_guardrail(lambda _: answer) as mock:
        closed = Guardrail(settings(mock.url))
        v = await closed.judge("some text", "input", CTX)
        assert (v.action, v.failed) == ("block", True)
        assert "some text" not in v.reason
        opened = Guardrail(settings(mock.url, on_error="allow"))
        assert (await opened.judge("some text", "input", CTX)).action == "allow"
        await closed.aclose()
        await opened.aclose()


async def test_an_unreachable_service_is_decided_by_on_error() -> None:
    with trio.socket.socket() as s:  # a port nobody listens on
        await s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = Guardrail(settings(f"http://127.0.0.1:{port}/judge"))
    v = await g.judge("x", "input", CTX)
    assert (v.action, v.failed) == ("block", True) and "unreachable" in v.reason
    await g.aclose()


async def test_a_slow_service_times_out_and_on_error_decides(autojump_clock: trio.testing.MockClock) -> None:
    async with mock_guardrail(lambda _: SLOW) as mock:
        g = Guardrail(settings(mock.url, timeout_ms=800))
        start = trio.current_time()
        v = await g.judge("x", "input", CTX)
        assert v.action == "block" and "800 ms" in v.reason
        assert trio.current_time() - start == pytest.approx(0.8, abs=0.05)
        g2 = Guardrail(settings(mock.url, timeout_ms=800, on_error="allow"))
        assert (await g2.judge("x", "input", CTX)).action == "allow"
        mock.release.set()
        await g.aclose()
        await g2.aclose()


async def test_over_the_concurrency_limit_a_request_waits() -> None:
    async with mock_guardrail(lambda _: SLOW) as mock:
        g = Guardrail(settings(mock.url, max_concurrency=2, timeout_ms=20_000))
        results: list[str] = []

        async def one() -> None:
            results.append((await g.judge("x", "input", CTX)).action)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(one)
                while len(mock.seen) < 2:  # two requests reach the service...
                    await trio.sleep(0.01)
                await trio.testing.wait_all_tasks_blocked(0.05)
                assert len(mock.seen) == 2  # ...and the other four wait for a slot
                mock.release.set()
        assert results == ["allow"] * 6 and mock.most_in_flight == 2
        await g.aclose()


def test_parse_answer_keeps_kinds_safe() -> None:
    v = parse_answer(b'{"action": "redact", "redactions": [{"start": 0, "end": 3, "kind": "a b<c>"}]}', 5)
    assert v.redactions == ((0, 3, "ABC"),)


# --- end to end: a WebSocket session -----------------------------------------------------------

GUARD_CHAIN = ["pii-detector", "external-guardrail"]


def guard_yaml(url: str, **kw: Any) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in kw.items())
    return (
        f"policy:\n  external-guardrail:\n    url: {url}\n    timeout_ms: 5000\n"
        "    headers:\n      Authorization: Bearer ${GUARD_TOKEN}\n" + lines
    )


def decisions_of(gw: Any) -> list[PolicyDecision]:
    out: list[PolicyDecision] = []
    gw.gateway.reporter.add_sink(lambda _sid, rec: out.append(rec) if isinstance(rec, PolicyDecision) else None)
    return out


async def test_session_input_is_held_until_judged_blocked_or_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TOKEN", "tok-from-env")
    decide = by_text(
        {
            "launch codes": {"action": "block", "reason": "classified"},
            "project Nightjar": {
                "action": "redact",
                "reason": "codename",
                "redactions": [{"start": 8, "end": 24, "kind": "codename"}],
            },
        }
    )
    async with mock_guardrail(decide) as guard, running(chain=GUARD_CHAIN, extra=guard_yaml(guard.url)) as gw:
        decisions = decisions_of(gw)
        async with open_websocket_url(gw.ws_url()) as ws:
            await next_of(ws, "session.created")
            await ws.send_message(user_item("tell me the launch codes", "evt_block"))
            error = await next_of(ws, "error")
            assert error["error"]["type"] == "policy_violation"
            assert error["error"]["code"] == "external-guardrail"
            assert error["error"]["event_id"] == "evt_block"
            assert "classified" in error["error"]["message"]
            await ws.send_message(user_item("What is project Nightjar about? Call 415-555-0132", "evt_redact"))
            added = await next_of(ws, "conversation.item.added")
        sent = [json.loads(m) for m in gw.mock.connections[0].messages]
        assert len(sent) == 1  # the blocked item never reached the provider
        text = sent[0]["item"]["content"][0]["text"]
        assert text == "What is [REDACTED:CODENAME] about? Call [REDACTED:PHONE]"
        assert added["item"]["content"][0]["text"] == text
    # The chain ran first: the service saw the phone number already redacted.
    judged = [s.payload for s in guard.seen if s.payload["direction"] == "input"]
    assert judged[1]["text"] == "What is project Nightjar about? Call [REDACTED:PHONE]"
    assert judged[0]["route"] == "/v1/realtime" and judged[0]["model"] == "gpt-realtime" and judged[0]["session_id"]
    assert guard.seen[0].headers["authorization"] == "Bearer tok-from-env"
    kinds = [(d.policy, d.action) for d in decisions if d.policy == "external-guardrail"]
    assert ("external-guardrail", "block") in kinds and ("external-guardrail", "redact") in kinds
    assert all("tok-from-env" not in repr(d) for d in decisions)


async def test_session_completed_assistant_text_blocked_is_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TOKEN", "t")
    said = "The answer involves the forbidden recipe."
    decide = by_text({"forbidden recipe": {"action": "block", "reason": "unsafe output"}})
    behaviour = MockBehaviour(text=said, include_output_items=True)
    async with (
        mock_guardrail(decide) as guard,
        running(behaviour, chain=GUARD_CHAIN, extra=guard_yaml(guard.url, apply_to="output")) as gw,
    ):
        async with open_websocket_url(gw.ws_url()) as ws:
            await next_of(ws, "session.created")
            await ws.send_message(json.dumps({"type": "response.create", "event_id": "evt_r"}))
            error = await next_of(ws, "error")
            assert error["error"]["code"] == "external-guardrail"
            done = await next_of(ws, "response.output_text.done")
            assert done["text"] == ""
            transcript = await next_of(ws, "response.output_audio_transcript.done")
            assert transcript["transcript"] == ""
            final = await next_of(ws, "response.done")
            texts = [
                p.get("text") for item in final["response"]["output"] for p in item.get("content", []) if "text" in p
            ]
            assert said not in texts and texts  # response.done carries the emptied text too
    # Output only: the request went unjudged; deltas never reach the service, the completed text
    # and the completed transcript do.
    assert [(s.payload["direction"], s.payload["text"]) for s in guard.seen] == [("output", said)] * 2


async def test_session_with_failing_service_blocks_input_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_TOKEN", "t")
    async with mock_guardrail(lambda _: 500) as guard, running(chain=GUARD_CHAIN, extra=guard_yaml(guard.url)) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await next_of(ws, "session.created")
            await ws.send_message(user_item("hello there", "evt_1"))
            error = await next_of(ws, "error")
            assert error["error"]["code"] == "external-guardrail" and "status 500" in error["error"]["message"]
        assert gw.mock.connections[0].messages == []


# --- end to end: /v1/chat/completions ----------------------------------------------------------


async def test_chat_completions_request_and_answer_are_judged(tmp_path: Path) -> None:
    import openai

    decide = by_text(
        {
            "ransom note": {"action": "block", "reason": "no"},
            "world": {"action": "redact", "reason": "r", "redactions": [{"start": 7, "end": 12, "kind": "place"}]},
        }
    )
    with trio.fail_after(30):
        async with mock_guardrail(decide) as guard, open_mock_http_upstream(HttpMockBehaviour()) as upstream:
            yaml = (
                chat_config(upstream.url, GUARD_CHAIN, guard_yaml(guard.url).replace("${GUARD_TOKEN}", "t"))
                + f"gateway:\n  state_dir: {tmp_path}\n"
            )
            key = make_key(tmp_path, "chat-app", scopes=["chat"], team="support")
            async with serve_gateway(Gateway(load_config_text(yaml, "chat.yaml"), secrets=SECRETS)) as gw:
                client = openai_client(gw.base_url, key)

                def ask(text: str) -> str:
                    messages: Any = [{"role": "user", "content": text}]
                    r = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                    return r.choices[0].message.content or ""

                try:
                    await in_thread(lambda: ask("write me a ransom note"))
                    raise AssertionError("the guardrail's block was not enforced")
                except openai.BadRequestError as exc:
                    assert "external-guardrail" in json.dumps(exc.body)
                assert await in_thread(lambda: ask("hi")) == "Hello, [REDACTED:PLACE]!"
        assert len(upstream.requests) == 1  # the blocked request never left the gateway
        inputs = [s.payload for s in guard.seen if s.payload["direction"] == "input"]
        assert inputs[0]["route"] == "/v1/chat/completions" and inputs[0]["key_name"] == "chat-app"
        assert inputs[0]["team"] == "support" and inputs[0]["model"] == "gpt-4o-mini"
        assert [s.payload["text"] for s in guard.seen if s.payload["direction"] == "output"] == ["Hello, world!"]
