"""Gateway keys at the WebSocket handshake: live gateway, mock provider, real clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trio_websocket import ConnectionClosed, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from kt_trio.records import BudgetAlert, SessionSummary
from tests.conftest import running
from tests.helpers import bearer, make_key, rejected, revoke

REQUIRE = "  auth:\n    require_keys: true\n"


async def test_required_keys_refuse_missing_unknown_revoked_and_out_of_scope(tmp_path: Path) -> None:
    good = make_key(tmp_path, "app", team="payments")
    chat_only = make_key(tmp_path, "chat-only", scopes=["chat"])
    gone = make_key(tmp_path, "gone")
    revoke(tmp_path, "gone", terminate=False)
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path, gateway_extra=REQUIRE) as gw:
        assert (await rejected(gw.ws_url())).status_code == 401
        assert (await rejected(gw.ws_url(), bearer("sk-provider-key"))).status_code == 401
        assert (await rejected(gw.ws_url(), bearer("kt_gk_" + "x" * 43))).status_code == 401
        revoked = await rejected(gw.ws_url(), bearer(gone))
        assert revoked.status_code == 401 and b"revoked" in revoked.body
        assert (await rejected(gw.ws_url(), bearer(chat_only))).status_code == 403
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(good)) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"
        await gw.gateway.wait_sessions(lambda n: n == 0)
        summary = gw.gateway.recent_summaries[-1]
        assert (summary.key_name, summary.team) == ("app", "payments")
        assert gw.mock.handshake_count == 1
        assert good not in repr(gw.mock.connections[0].headers)


async def test_each_way_of_presenting_a_key(tmp_path: Path) -> None:
    key = make_key(tmp_path, "app")
    async with running(MockBehaviour(mode="echo", subprotocol=None), state_dir=tmp_path, gateway_extra=REQUIRE) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=[("api-key", key)]) as ws:
            await ws.send_message("a")
            await ws.get_message()
        offered = ["realtime", f"openai-insecure-api-key.{key}"]
        async with open_websocket_url(gw.ws_url(), subprotocols=offered) as ws:
            assert ws.subprotocol == "realtime"
            await ws.send_message("b")
            await ws.get_message()
        for conn in gw.mock.connections:
            assert key not in repr(conn.headers) + repr(conn.subprotocols)


async def test_per_key_session_limit_counts_across_sessions(tmp_path: Path) -> None:
    key = make_key(tmp_path, "capped", max_sessions=1)
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("x")
            await ws.get_message()
            assert (await rejected(gw.ws_url(), bearer(key))).status_code == 429
            # Anonymous clients (keys not required) are not counted against the key.
            async with open_websocket_url(gw.ws_url()) as other:
                await other.send_message("y")
                await other.get_message()
        await gw.gateway.wait_sessions(lambda n: n == 0)
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("again")
            assert await ws.get_message() == "again"


async def test_revoke_terminate_closes_live_sessions_with_1008(tmp_path: Path) -> None:
    key = make_key(tmp_path, "leaked")
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        summaries: list[SessionSummary] = []
        gw.gateway.reporter.add_sink(lambda sid, r: summaries.append(r) if isinstance(r, SessionSummary) else None)
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message(json.dumps({"type": "x"}))
            await ws.get_message()
            revoke(tmp_path, "leaked", terminate=True)
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await ws.get_message()
            assert (info.value.reason.code, info.value.reason.reason) == (1008, "key revoked")
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert summaries[-1].key_name == "leaked"


async def test_per_key_message_rate_is_shared_by_its_sessions(tmp_path: Path) -> None:
    key = make_key(tmp_path, "chatty", messages_per_minute=12)  # a burst of 2 for the whole key
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with (
            open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as one,
            open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as two,
        ):
            for ws, event_id in ((one, "a"), (two, "b")):
                await ws.send_message(json.dumps({"type": "x", "event_id": event_id}))
                assert json.loads(await ws.get_message())["event_id"] == event_id
            await two.send_message(json.dumps({"type": "x", "event_id": "c"}))
            error = json.loads(await two.get_message())
            assert error["error"]["code"] == "rate_limit_exceeded" and error["error"]["event_id"] == "c"


async def test_daily_token_budget_alerts_blocks_and_survives_a_restart(tmp_path: Path) -> None:
    # Mock responses use 168, 170, ... tokens: the first crosses 0.5 and 0.8 of 200, the second 1.0.
    key = make_key(tmp_path, "metered", daily_tokens=200)
    alerts: list[BudgetAlert] = []

    async def create(ws: object) -> dict[str, object]:
        await ws.send_message(json.dumps({"type": "response.create"}))  # type: ignore[attr-defined]
        while True:
            event = json.loads(await ws.get_message())  # type: ignore[attr-defined]
            if event["type"] in ("response.done", "error"):
                return event

    async with running(state_dir=tmp_path) as gw:
        gw.gateway.reporter.add_sink(lambda sid, r: alerts.append(r) if isinstance(r, BudgetAlert) else None)
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.get_message()
            assert (await create(ws))["type"] == "response.done"
            assert (await create(ws))["type"] == "response.done"
            refused = await create(ws)
            assert refused["error"]["type"] == "budget_exceeded"  # type: ignore[index]
        assert [a.threshold for a in alerts] == [0.5, 0.8, 1.0]
    # A new gateway on the same state dir: the day's use was kept.
    async with running(state_dir=tmp_path) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.get_message()
            assert (await create(ws))["error"]["type"] == "budget_exceeded"  # type: ignore[index]
        assert [json.loads(m)["type"] for m in gw.mock.connections[0].messages] == []
