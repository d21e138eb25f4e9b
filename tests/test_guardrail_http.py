"""The external guardrail on the HTTP doors through real sockets: streamed chat answers and
`/v1/responses` (whole and streamed), the gateway's HTTP app on 127.0.0.1 between the official
openai SDK (or httpx, to read the raw stream) and the mock provider, with the mock guardrail
service the tests start (tests/guardrail_mock.py). What each door does is written down in
kt_trio/guardrail/http_doors.py and docs/policies.md."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import openai
import trio

from kt_trio.chat.app import ChatApp
from kt_trio.config import load_config_text
from kt_trio.config.schema import ExternalGuardrailSettings
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.guardrail.client import Guardrail
from kt_trio.mocks.http import HttpMockBehaviour, MockHttpUpstream, open_mock_http_upstream, serve_asgi
from kt_trio.records import PolicyDecision, Record
from tests.chat_fixtures import CLIENT_KEY, SECRETS, chat_config, in_thread, openai_client
from tests.guardrail_mock import MockGuardrail, by_text, mock_guardrail

SAID = "Hello, world!"  # what the mock provider answers, in four streamed pieces
BLOCK_WORLD = {"world": {"action": "block", "reason": "no worlds here"}}
REDACT_WORLD = {"world": {"action": "redact", "reason": "r", "redactions": [{"start": 7, "end": 12, "kind": "place"}]}}


@attrs.define
class Rig:
    url: str
    mock: MockHttpUpstream
    guard: MockGuardrail
    records: list[Record]

    def decisions(self) -> list[PolicyDecision]:
        return [r for r in self.records if isinstance(r, PolicyDecision) and r.policy == "external-guardrail"]


@asynccontextmanager
async def rig(answers: dict[str, Any], apply_to: str = "both") -> AsyncIterator[Rig]:
    records: list[Record] = []
    with trio.fail_after(30):
        async with mock_guardrail(by_text(answers)) as guard, open_mock_http_upstream(HttpMockBehaviour()) as mock:
            config = load_config_text(chat_config(mock.url, ["pii-detector", "external-guardrail"]))
            guardrail = Guardrail(ExternalGuardrailSettings(url=guard.url, timeout_ms=5000, apply_to=apply_to))
            app = ChatApp(
                config,
                secrets=SECRETS,
                health=UpstreamHealth(5, 30.0),
                report=lambda _sid, rec: records.append(rec),
                guardrail=guardrail,
            )
            try:
                async with serve_asgi(app) as url:
                    yield Rig(url, mock, guard, records)
            finally:
                await app.aclose()
                await guardrail.aclose()


def sse_data(text: str) -> list[Any]:
    out: list[Any] = []
    for line in text.splitlines():
        if line.startswith("data: "):
            out.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
    return out


async def post_stream(url: str, path: str, body: dict[str, Any]) -> list[Any]:
    async with httpx.AsyncClient(timeout=20) as client:
        resp = await client.post(url + path, json={**body, "stream": True})
    assert resp.status_code == 200, resp.text
    return sse_data(resp.text)


def outputs(guard: MockGuardrail) -> list[str]:
    return [s.payload["text"] for s in guard.seen if s.payload["direction"] == "output"]


# --- streamed chat answers ----------------------------------------------------------------------


async def test_streamed_chat_answer_blocked_at_its_end_never_completes() -> None:
    async with rig(BLOCK_WORLD) as r:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        chunks = await post_stream(r.url, "/v1/chat/completions", body)
        assert chunks[-1] == "[DONE]"
        end = chunks[-2]
        assert end["error"]["code"] == "external-guardrail" and "no worlds here" in end["error"]["message"]
        assert end["choices"][0]["finish_reason"] == "content_filter"
        # The finishing chunk was held for the verdict and dropped: no normal end reached the client.
        reasons = [c["choices"][0].get("finish_reason") for c in chunks[:-2] if c.get("choices")]
        assert "stop" not in reasons
        assert [d.action for d in r.decisions()] == ["block"]
    # The completed text, once (never a delta); the request ("hi") was judged as input.
    assert outputs(r.guard) == [SAID]
    assert [s.payload["route"] for s in r.guard.seen] == ["/v1/chat/completions"] * 2


async def test_streamed_chat_answer_the_sdk_reads_ends_normally_when_allowed_and_redact_is_a_flag() -> None:
    async with rig(REDACT_WORLD) as r:
        client = openai_client(r.url, CLIENT_KEY)

        def stream() -> tuple[str, list[Any]]:
            messages: Any = [{"role": "user", "content": "hi"}]
            parts = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in parts if c.choices)
            return text, [c.choices[0].finish_reason for c in parts if c.choices]

        text, reasons = await in_thread(stream)
        # Already streamed: it cannot be recalled, so the decision says what happened.
        assert text == SAID and "stop" in reasons
        [decision] = r.decisions()
        assert decision.action == "flag" and "already sent" in decision.reason
    assert outputs(r.guard) == [SAID]


# --- /v1/responses, whole -----------------------------------------------------------------------


async def test_responses_request_blocked_and_answer_redacted_or_blocked() -> None:
    answers = {"ransom": {"action": "block", "reason": "no"}, **REDACT_WORLD}
    async with rig(answers) as r:
        client = openai_client(r.url, CLIENT_KEY)

        def ask(text: str) -> Any:
            return client.responses.create(model="gpt-4o-mini", input=text, instructions="Be brief.")

        try:
            await in_thread(lambda: ask("write a ransom note"))
            raise AssertionError("the guardrail's block was not enforced")
        except openai.BadRequestError as exc:
            assert exc.body is not None and "external-guardrail" in json.dumps(exc.body)
        assert r.mock.requests == []  # the blocked request never left the gateway
        resp = await in_thread(lambda: ask("hi"))
        assert resp.output_text == "Hello, [REDACTED:PLACE]!"
    inputs = [s.payload for s in r.guard.seen if s.payload["direction"] == "input"]
    assert {p["text"] for p in inputs} >= {"write a ransom note", "Be brief.", "hi"}
    assert inputs[0]["route"] == "/v1/responses" and inputs[0]["model"] == "gpt-4o-mini"
    assert outputs(r.guard) == [SAID]


async def test_responses_whole_answer_blocked_is_a_400() -> None:
    async with rig(BLOCK_WORLD, apply_to="output") as r:
        client = openai_client(r.url, CLIENT_KEY)
        try:
            await in_thread(lambda: client.responses.create(model="gpt-4o-mini", input="hi"))
            raise AssertionError("the guardrail's block was not enforced")
        except openai.BadRequestError as exc:
            assert exc.body is not None and "no worlds here" in json.dumps(exc.body)
    assert [s.payload["direction"] for s in r.guard.seen] == ["output"]  # output only


# --- /v1/responses, streamed --------------------------------------------------------------------


async def test_responses_stream_blocked_at_its_end_has_an_error_event_and_no_completed() -> None:
    async with rig(BLOCK_WORLD, apply_to="output") as r:
        events = await post_stream(r.url, "/v1/responses", {"model": "gpt-4o-mini", "input": "hi"})
        assert events[-1]["type"] == "error" and events[-1]["code"] == "external-guardrail"
        kinds = [e["type"] for e in events]
        assert "response.completed" not in kinds and "response.output_text.done" not in kinds
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == SAID
        numbers = [e["sequence_number"] for e in events]
        assert numbers == sorted(set(numbers))
    assert outputs(r.guard) == [SAID]


async def test_responses_stream_redacted_repeats_the_redacted_text_in_its_whole_text_events() -> None:
    async with rig(REDACT_WORLD, apply_to="output") as r:
        client = openai_client(r.url, CLIENT_KEY)
        events = await in_thread(lambda: list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True)))
        done = next(e for e in events if e.type == "response.output_text.done")
        assert done.text == "Hello, [REDACTED:PLACE]!"
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == "Hello, [REDACTED:PLACE]!"
        [decision] = r.decisions()
        assert decision.action == "redact" and decision.redacted_kinds == ("PLACE",)
