"""Daily USD budgets of gateway keys (`keys create --daily-usd`) and teams
(`teams.<team>.daily_usd`): a live gateway, the mock providers, real WebSocket clients, the
official openai SDK and a subscriber on `/ws/events`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.chat_fixtures import in_thread, openai_client
from tests.conftest import running
from tests.helpers import bearer, make_key, rows
from tests.test_chat_governance import chat_gateway
from tests.test_cost import FIRST, SECOND

# The mock Realtime provider's first two responses cost FIRST and SECOND (priced by hand in
# tests/test_cost.py). $0.006: the first response crosses 0.5; the second 0.8 and 1.0.
BUDGET = 0.006


async def create(ws: WebSocketConnection) -> dict[str, Any]:
    await ws.send_message(json.dumps({"type": "response.create", "event_id": "evt_c"}))
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] in ("response.done", "error"):
            return event  # type: ignore[no-any-return]


async def budget_events(sub: WebSocketConnection, count: int) -> list[dict[str, Any]]:
    found = []
    while len(found) < count:
        event = json.loads(await sub.get_message())
        if event["type"] == "budget":
            found.append(event["payload"])
    return found


@asynccontextmanager
async def subscribed(port: int) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(f"ws://127.0.0.1:{port}/ws/events?types=budget") as sub:
        yield sub


async def test_a_key_usd_budget_alerts_then_refuses_new_responses_and_survives_a_restart(tmp_path: Path) -> None:
    key = make_key(tmp_path, "metered", team="blue", daily_usd=BUDGET)
    chain = ["audit-logger"]
    async with running(state_dir=tmp_path, chain=chain) as gw, subscribed(gw.port) as sub:
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.get_message()
            assert (await create(ws))["type"] == "response.done"
            assert (await create(ws))["type"] == "response.done"
            refused = await create(ws)
            assert refused["error"]["type"] == "budget_exceeded" and refused["error"]["code"] == "budget_exceeded"
            assert refused["error"]["event_id"] == "evt_c"
            assert "Daily USD budget of this key" in refused["error"]["message"]
            # Only new work is refused: the session stays open for everything else.
            await ws.send_message(json.dumps({"type": "session.update", "session": {}}))
            assert json.loads(await ws.get_message())["type"] == "session.updated"
        alerts = await budget_events(sub, 3)
    assert [a["threshold"] for a in alerts] == [0.5, 0.8, 1.0]
    assert [a["event"] for a in alerts] == ["threshold_crossed", "threshold_crossed", "exceeded"]
    assert alerts[0]["used_usd"] == pytest.approx(FIRST)
    assert alerts[-1]["used_usd"] == pytest.approx(FIRST + SECOND)
    assert {(a["budget"], a["key_name"], a["team"], a["max_usd"]) for a in alerts} == {
        ("key", "metered", "blue", BUDGET)
    }
    audited = [data for kind, _, data in rows(tmp_path) if kind == "budget"]
    assert [(a["threshold"], a["budget"], a["name"]) for a in audited] == [
        (0.5, "key", "metered"),
        (0.8, "key", "metered"),
        (1.0, "key", "metered"),
    ]
    # A new gateway on the same state dir (or another `--workers` process on the same keys.db):
    # the day's spend was kept, and the refused request never reached the provider.
    async with running(state_dir=tmp_path) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.get_message()
            assert (await create(ws))["error"]["type"] == "budget_exceeded"
        assert [json.loads(m)["type"] for m in gw.mock.connections[0].messages] == []


async def test_a_team_usd_budget_stops_every_key_of_the_team_and_no_other(tmp_path: Path) -> None:
    alpha = make_key(tmp_path, "alpha", team="blue")
    beta = make_key(tmp_path, "beta", team="blue")
    other = make_key(tmp_path, "gamma", team="red")
    extra = f"teams:\n  blue:\n    daily_usd: {BUDGET}\n  red:\n    daily_usd: 100\n"
    async with running(state_dir=tmp_path, extra=extra) as gw, subscribed(gw.port) as sub:
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(alpha)) as ws:
            await ws.get_message()
            assert (await create(ws))["type"] == "response.done"
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(beta)) as ws:
            await ws.get_message()
            assert (await create(ws))["type"] == "response.done"
            refused = await create(ws)
            assert refused["error"]["code"] == "budget_exceeded"
            assert "Daily USD budget of team 'blue'" in refused["error"]["message"]
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(alpha)) as ws:
            await ws.get_message()
            assert (await create(ws))["error"]["code"] == "budget_exceeded"
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(other)) as ws:
            await ws.get_message()
            assert (await create(ws))["type"] == "response.done"
        alerts = await budget_events(sub, 3)
    assert [(a["threshold"], a["budget"], a["team"], a["key_name"]) for a in alerts] == [
        (0.5, "team", "blue", None),
        (0.8, "team", "blue", None),
        (1.0, "team", "blue", None),
    ]


async def test_an_unpriced_model_costs_nothing_against_the_budget(tmp_path: Path) -> None:
    key = make_key(tmp_path, "metered", daily_usd=0.000001)
    async with running(state_dir=tmp_path) as gw:
        # A gpt-family model no price names (routed to the mock by family): reported, never guessed.
        async with open_websocket_url(gw.ws_url(model="gpt-voice-lab"), extra_headers=bearer(key)) as ws:
            await ws.get_message()
            for _ in range(3):
                assert (await create(ws))["type"] == "response.done"
        assert "gpt-voice-lab" in gw.gateway.pricing.unpriced


PRICEY = "pricing:\n  gpt-4o-mini:\n    input: 10000\n    output: 10000\n"  # 18 tokens: $0.18 a request


async def test_a_key_usd_budget_is_charged_by_chat_and_refuses_every_http_door_with_429(tmp_path: Path) -> None:
    key = make_key(tmp_path, "metered", scopes=["chat"], daily_usd=0.3)
    hi = [{"role": "user", "content": "hi"}]
    async with chat_gateway(tmp_path, [], extra=PRICEY) as (gw, mock, records):
        c = openai_client(gw.base_url, key)

        def stream() -> str:
            chunks = c.chat.completions.create(model="gpt-4o-mini", messages=hi, stream=True)
            return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)

        with trio.fail_after(30):
            assert await in_thread(stream) == "Hello, world!"
            await in_thread(lambda: c.chat.completions.create(model="gpt-4o-mini", messages=hi))

        def refused(call: Any) -> openai.RateLimitError:
            with pytest.raises(openai.RateLimitError) as info:
                call()
            return info.value

        calls = [
            lambda: c.chat.completions.create(model="gpt-4o-mini", messages=hi),
            lambda: c.embeddings.create(model="text-embedding-3-small", input="hi"),
            lambda: c.responses.create(model="gpt-4o-mini", input="hi"),
        ]
        for call in calls:
            err = await in_thread(lambda call=call: refused(call))
            assert err.status_code == 429
            body = err.response.json()["error"]
            assert (body["type"], body["code"]) == ("budget_exceeded", "budget_exceeded")
            assert "Daily USD budget of this key" in body["message"]
        assert len(mock.requests) == 2  # the refused requests never left the gateway
    spend_alerts = [r for r in records if type(r).__name__ == "SpendAlert"]
    assert [(a.threshold, a.budget, a.name) for a in spend_alerts] == [  # type: ignore[attr-defined]
        (0.5, "key", "metered"),
        (0.8, "key", "metered"),
        (1.0, "key", "metered"),
    ]
    assert spend_alerts[-1].used_usd == pytest.approx(0.36)  # type: ignore[attr-defined]
    # The day's spend is in keys.db: a new gateway refuses too.
    async with chat_gateway(tmp_path, [], extra=PRICEY) as (gw, mock, _):
        c = openai_client(gw.base_url, key)
        err = await in_thread(lambda: refused(calls[0]))
        assert err.response.json()["error"]["code"] == "budget_exceeded" and mock.requests == []


async def test_a_team_usd_budget_refuses_every_key_of_the_team_over_http(tmp_path: Path) -> None:
    first = make_key(tmp_path, "chat-app", scopes=["chat"], team="blue")
    second = make_key(tmp_path, "batch-app", scopes=["chat"], team="blue")
    outsider = make_key(tmp_path, "red-app", scopes=["chat"], team="red")
    teams = "teams:\n  blue:\n    daily_usd: 0.15\n"  # one request ($0.18) spends it
    hi = [{"role": "user", "content": "hi"}]
    async with chat_gateway(tmp_path, [], extra=PRICEY + teams) as (gw, mock, _):

        def ask(key: str) -> object:
            return openai_client(gw.base_url, key).chat.completions.create(model="gpt-4o-mini", messages=hi)

        with trio.fail_after(30):
            await in_thread(lambda: ask(first))
            for key in (first, second):
                with pytest.raises(openai.RateLimitError) as info:
                    await in_thread(lambda key=key: ask(key))
                assert "Daily USD budget of team 'blue'" in info.value.response.json()["error"]["message"]
            await in_thread(lambda: ask(outsider))
        assert len(mock.requests) == 2
