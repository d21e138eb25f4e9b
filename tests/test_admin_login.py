"""The console's login cookie: `POST /console/login|logout`, the admin routes and `/ws/events`
behind it, and the Origin rule, through a real gateway (httpx and trio-websocket clients)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running
from tests.helpers import closed_with, make_key, rejected, revoke


def _cookie_of(resp: httpx.Response) -> tuple[str, str]:
    """(token, the whole Set-Cookie header) of a login answer."""
    header = resp.headers["set-cookie"]
    name, _, rest = header.partition("=")
    assert name == "kt_console"
    return rest.split(";")[0], header


async def test_login_sets_an_opaque_http_only_strict_cookie_that_admin_routes_accept(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    user = make_key(tmp_path, "app", scopes=["realtime", "events"], team="t")
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        own = f"http://127.0.0.1:{gw.port}"
        async with httpx.AsyncClient(base_url=gw.base_url) as http:
            assert (await http.post("/console/login", json={"key": user})).status_code == 403
            assert (await http.post("/console/login", json={"key": "kt_gk_" + "y" * 43})).status_code == 401
            assert (await http.post("/console/login", json={})).status_code == 401
            assert (await http.post("/console/login", content=b"[1]")).status_code == 400
            foreign = await http.post("/console/login", json={"key": admin}, headers={"Origin": "https://evil.example"})
            assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
            form = await http.post("/console/login", data={"key": admin}, headers={"Origin": own})
            assert form.status_code == 200
            login = await http.post("/console/login", json={"key": admin})
            assert login.status_code == 200 and login.json()["key_name"] == "ops"
            token, header = _cookie_of(login)
            attributes = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
            assert {"httponly", "samesite", "path", "max-age"} <= attributes
            assert "SameSite=Strict" in header and "Path=/" in header and "Secure" not in header
            assert admin not in header and len(token) >= 40 and token != _cookie_of(form)[0]
            http.cookies.clear()
        cookie = {"Cookie": f"kt_console={token}"}
        async with httpx.AsyncClient(base_url=gw.base_url) as http, open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("x")
            await ws.get_message()
            session_id = next(iter(gw.gateway.sessions)).id
            # A GET with the cookie: no Origin (a same-origin GET or a tool) or our own is fine.
            listed = await http.get("/admin/sessions", headers=cookie)
            assert listed.status_code == 200 and listed.json()["data"][0]["id"] == session_id
            assert (await http.get("/admin/sessions", headers={**cookie, "Origin": own})).status_code == 200
            cross = await http.get("/admin/sessions", headers={**cookie, "Origin": "https://evil.example"})
            assert cross.status_code == 403 and cross.json()["error"]["code"] == "origin_not_allowed"
            # Changing something with the cookie needs our own Origin, present.
            url = f"/admin/sessions/{session_id}"
            assert (await http.delete(url, headers=cookie)).status_code == 403
            assert (await http.delete(url, headers={**cookie, "Origin": "http://127.0.0.1:1"})).status_code == 403
            assert (await http.delete(url, headers={**cookie, "Origin": "null"})).status_code == 403
            closed = await http.delete(url, params={"code": "4000", "reason": "bye"}, headers={**cookie, "Origin": own})
            assert closed.status_code == 200
            assert await closed_with(ws) == (4000, "bye")
            assert (await http.get("/admin/sessions", headers={"Cookie": "kt_console=forged"})).status_code == 401
            # Logout forgets the login and expires the cookie.
            out = await http.post("/console/logout", headers={**cookie, "Origin": own})
            assert out.status_code == 200 and out.json() == {"logged_out": True}
            assert "Max-Age=0" in out.headers["set-cookie"]
            assert (await http.get("/admin/sessions", headers=cookie)).status_code == 401


async def test_event_stream_accepts_the_login_cookie_from_our_own_origin_only(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    extra = "features:\n  websocket:\n    require_auth: true\n"
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path, extra=extra) as gw:
        own = f"http://127.0.0.1:{gw.port}"
        async with httpx.AsyncClient(base_url=gw.base_url) as http:
            token, _ = _cookie_of(await http.post("/console/login", json={"key": admin}))
        url = gw.ws_url(route="/ws/events")
        cookie = ("Cookie", f"kt_console={token}")
        assert (await rejected(url)).status_code == 401
        assert (await rejected(url, [("Cookie", "kt_console=forged"), ("Origin", own)])).status_code == 401
        assert (await rejected(url, [cookie, ("Origin", "https://evil.example")])).status_code == 403
        async with open_websocket_url(url, extra_headers=[cookie, ("Origin", own)]) as events:
            async with open_websocket_url(gw.ws_url()) as ws:
                await ws.send_message("hello")
                await ws.get_message()
            seen = json.loads(await events.get_message())
            assert seen["payload"]["event"] == "session_start"
            # Revoking the admin key ends the login: the stream is closed, a new one refused.
            revoke(tmp_path, "ops", terminate=False)
            assert await closed_with(events) == (1008, "key revoked")
        assert (await rejected(url, [cookie, ("Origin", own)])).status_code == 401
