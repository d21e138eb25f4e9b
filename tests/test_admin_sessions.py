"""The admin API's auth and its sessions routes, through a real gateway, real WebSocket clients
(trio-websocket) and real HTTP (httpx) on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from trio_websocket import WebSocketConnection, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running
from tests.helpers import bearer, closed_with, make_key, rows

AUDITED = {"chain": ["audit-logger"]}


async def _response(ws: WebSocketConnection) -> dict[str, Any]:
    """Asks the mock for one response; its `response.done` event."""
    await ws.send_message(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] == "response.done":
            return event  # type: ignore[no-any-return]


def _error(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body["error"]) == {"type", "code", "message", "param"}, body
    return body["error"]  # type: ignore[no-any-return]


async def test_admin_routes_need_a_key_with_the_admin_scope(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    user = make_key(tmp_path, "app", scopes=["realtime", "chat", "events"], team="payments")
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url) as http:
            for path in ("/admin/sessions", "/admin/anything"):
                missing = await http.get(path)
                assert missing.status_code == 401
                assert _error(missing)["type"] == "authentication_error"
                bogus = await http.get(path, headers={"Authorization": "Bearer kt_gk_" + "x" * 43})
                assert bogus.status_code == 401
                provider = await http.get(path, headers={"Authorization": "Bearer sk-provider"})
                assert provider.status_code == 401
                refused = await http.get(path, headers=dict(bearer(user)))
                assert refused.status_code == 403
                err = _error(refused)
                assert (err["type"], err["code"]) == ("permission_error", "key_scope")
                assert "admin" in err["message"] and user not in refused.text
            ok = await http.get("/admin/sessions", headers=dict(bearer(admin)))
            assert ok.status_code == 200 and ok.json() == {"object": "list", "data": []}
            assert ok.headers["cache-control"] == "no-store"
            by_api_key = await http.get("/admin/sessions", headers={"api-key": admin})
            assert by_api_key.status_code == 200
            unknown = await http.get("/admin/nothing-here", headers=dict(bearer(admin)))
            assert unknown.status_code == 404 and _error(unknown)["code"] == "not_found"
            wrong_method = await http.post("/admin/sessions", headers=dict(bearer(admin)))
            assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"


async def test_listing_shows_an_open_session_with_its_counters_moving(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    user = make_key(tmp_path, "app", team="payments")
    async with running(MockBehaviour(), state_dir=tmp_path) as gw:
        async with (
            httpx.AsyncClient(base_url=gw.base_url, headers=dict(bearer(admin))) as http,
            open_websocket_url(gw.ws_url(model="gpt-realtime"), extra_headers=bearer(user)) as ws,
        ):
            done = await _response(ws)
            first = (await http.get("/admin/sessions")).json()["data"]
            assert len(first) == 1
            row = first[0]
            assert row["id"] == next(iter(gw.gateway.sessions)).id
            assert (row["route"], row["target"], row["model"]) == ("/v1/realtime", "mock", "gpt-realtime")
            assert (row["key_name"], row["team"], row["client_ip"]) == ("app", "payments", "127.0.0.1")
            assert row["started_at"].endswith("Z") and "T" in row["started_at"]
            assert row["messages_in"] == 1 and row["messages_out"] >= 2
            used = done["response"]["usage"]
            assert row["tokens"]["total"] == used["total_tokens"] > 0
            assert row["tokens"]["input"] == used["input_tokens"]
            await _response(ws)
            second = (await http.get("/admin/sessions")).json()["data"][0]
            assert second["messages_in"] == 2 and second["messages_out"] > row["messages_out"]
            assert second["tokens"]["total"] > row["tokens"]["total"]
            assert user not in json.dumps(second)


async def test_delete_closes_the_client_with_the_requested_code_and_reason(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path, **AUDITED) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url, headers=dict(bearer(admin))) as http:
            async with (
                open_websocket_url(
                    gw.ws_url(route="/ws/events", types="system"), extra_headers=bearer(admin)
                ) as events,
                open_websocket_url(gw.ws_url()) as ws,
            ):
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                session_id = (await http.get("/admin/sessions")).json()["data"][0]["id"]
                for query, code in (
                    ({"code": "1005"}, "invalid_close_code"),
                    ({"code": "2999"}, "invalid_close_code"),
                    ({"code": "x"}, "invalid_close_code"),
                    ({"reason": "é" * 62}, "invalid_close_reason"),
                ):
                    bad = await http.delete(f"/admin/sessions/{session_id}", params=query)
                    assert bad.status_code == 400 and _error(bad)["code"] == code
                missing = await http.delete("/admin/sessions/nope")
                assert missing.status_code == 404 and _error(missing)["code"] == "session_not_found"
                reason = "maintenance: " + "é" * 55  # 123 bytes in UTF-8, the most a close frame holds
                closed = await http.delete(f"/admin/sessions/{session_id}", params={"code": "4001", "reason": reason})
                assert closed.status_code == 200
                assert closed.json() == {"id": session_id, "closed": True, "code": 4001, "reason": reason}
                assert await closed_with(ws) == (4001, reason)
                while True:
                    event = json.loads(await events.get_message())
                    if event["payload"].get("event") == "admin_action":
                        break
                assert event["type"] == "system"
                payload = event["payload"]
                assert (payload["action"], payload["admin"], payload["target"]) == ("session_close", "ops", session_id)
                assert (payload["code"], payload["reason"]) == (4001, reason)
                assert admin not in json.dumps(event)
            await gw.gateway.wait_sessions(lambda n: n == 0)
            assert gw.gateway.recent_summaries[-1].close_code == 4001
            assert (await http.get("/admin/sessions")).json()["data"] == []
    audited = [data for kind, _, data in rows(tmp_path) if kind == "admin"]
    assert audited == [
        {
            "action": "session_close",
            "admin": "ops",
            "target": session_id,
            "details": {"code": 4001, "reason": reason},
        }
    ]


@pytest.mark.parametrize("code", ["1000", "1011", "3000", "4999"])
async def test_every_legal_application_close_code_reaches_the_client(tmp_path: Path, code: str) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with (
            httpx.AsyncClient(base_url=gw.base_url, headers=dict(bearer(admin))) as http,
            open_websocket_url(gw.ws_url()) as ws,
        ):
            await ws.send_message("hi")
            await ws.get_message()
            session_id = next(iter(gw.gateway.sessions)).id
            assert (await http.delete(f"/admin/sessions/{session_id}", params={"code": code})).status_code == 200
            assert await closed_with(ws) == (int(code), "closed by an administrator")
