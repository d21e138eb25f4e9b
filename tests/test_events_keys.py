"""`/ws/events` with gateway keys (issue 7): a team key sees its team's events, an admin key all;
usage is attributed to keys and teams on the stream and in the `team` metrics label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trio_websocket import WebSocketConnection, open_websocket_url

from tests.conftest import running
from tests.helpers import bearer, http_get, make_key, rejected, samples

EVENTS = "features:\n  websocket:\n    require_auth: true\n    tokens: [dashboard-token]\n"


async def one_response(url: str, key: str | None) -> None:
    async with open_websocket_url(url, extra_headers=bearer(key) if key else []) as ws:
        await ws.send_message(json.dumps({"type": "response.create"}))
        while json.loads(await ws.get_message())["type"] != "response.done":
            pass


async def until_session_end(events: WebSocketConnection, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    ends = 0
    while ends < count:
        seen.append(json.loads(await events.get_message()))
        ends += seen[-1]["payload"].get("event") == "session_end"
    return seen


async def test_team_keys_see_their_team_and_admin_keys_see_everything(tmp_path: Path) -> None:
    pay_app = make_key(tmp_path, "pay-app", team="payments")
    ops_app = make_key(tmp_path, "ops-app", team="ops")
    pay_events = make_key(tmp_path, "pay-events", team="payments", scopes=["events"])
    admin = make_key(tmp_path, "admin", scopes=["admin"])
    teamless = make_key(tmp_path, "teamless", scopes=["events"])
    realtime_only = make_key(tmp_path, "rt", team="payments")
    async with running(state_dir=tmp_path, extra=EVENTS) as gw:
        events_url = f"ws://127.0.0.1:{gw.port}/ws/events"
        assert (await rejected(events_url)).status_code == 401
        assert (await rejected(f"{events_url}?token=kt_gk_{'x' * 43}")).status_code == 401
        assert (await rejected(f"{events_url}?token={realtime_only}")).status_code == 403
        refused = await rejected(f"{events_url}?token={teamless}")
        assert refused.status_code == 403 and b"no team" in refused.body

        async with (
            open_websocket_url(f"{events_url}?token={pay_events}&types=audit,usage") as team_view,
            open_websocket_url(f"{events_url}?types=audit,usage", extra_headers=bearer(admin)) as admin_view,
            open_websocket_url(f"{events_url}?token=dashboard-token&types=audit,usage") as token_view,
        ):
            # Other teams' and anonymous sessions first: a team view that let them through
            # would show them before its own session's end.
            await one_response(gw.ws_url(), ops_app)
            await one_response(gw.ws_url(), None)
            await one_response(gw.ws_url(), pay_app)
            mine = await until_session_end(team_view, 1)
            everything = await until_session_end(admin_view, 3)
            also_everything = await until_session_end(token_view, 3)

    assert {e["payload"].get("team") for e in mine if "team" in e["payload"]} == {"payments"}
    assert {e["payload"]["session_id"] for e in mine} == {gw.gateway.recent_summaries[-1].session_id}
    usage = [e["payload"] for e in mine if e["type"] == "usage" and e["payload"]["scope"] == "response"]
    assert usage and all((u["key_name"], u["team"]) == ("pay-app", "payments") for u in usage)
    teams = [e["payload"]["team"] for e in everything if e["payload"].get("event") == "session_end"]
    assert teams == ["ops", None, "payments"]
    assert [e["payload"] for e in also_everything] == [e["payload"] for e in everything]
    for key in (pay_app, pay_events, admin):
        assert key not in json.dumps(everything)


async def test_sessions_and_tokens_carry_a_bounded_team_label(tmp_path: Path) -> None:
    pay_app = make_key(tmp_path, "pay-app", team="payments")
    async with running(state_dir=tmp_path) as gw:
        await one_response(gw.ws_url(), pay_app)
        await one_response(gw.ws_url(), None)
        await gw.gateway.wait_sessions(lambda n: n == 0)
        status, body = await http_get(gw.port, "/metrics")
    assert status == 200
    values = samples(body.decode())
    base = (("close_code", "1000"), ("route", "/v1/realtime"), ("target", "mock"))
    assert values[("kt_sessions_total", (*base, ("team", "none")))] == 1
    assert values[("kt_sessions_total", (*base, ("team", "payments")))] == 1
    tokens = (("gen_ai_request_model", "gpt-realtime"), ("gen_ai_token_type", "input"), ("target", "mock"))
    assert values[("kt_gen_ai_client_token_usage_count", (*tokens, ("team", "payments")))] == 1
