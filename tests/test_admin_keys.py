"""`/admin/keys` and `/admin/config` through a real gateway and httpx; the keys it makes are used
for real sessions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running
from tests.helpers import bearer, closed_with, make_key, rejected, rows

REQUIRE = "  auth:\n    require_keys: true\n"


async def test_create_list_and_revoke_with_terminate_over_http(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(
        MockBehaviour(mode="echo"), state_dir=tmp_path, gateway_extra=REQUIRE, chain=["audit-logger"]
    ) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url, headers=dict(bearer(admin))) as http:
            settings = {
                "name": "app",
                "scopes": ["realtime", "chat"],
                "team": "payments",
                "models": ["gpt-realtime"],
                "expires_in": "30d",
                "max_sessions": 3,
                "messages_per_minute": 600,
                "daily_tokens": 100000,
            }
            created = await http.post("/admin/keys", json=settings)
            assert created.status_code == 201
            answer = created.json()
            key = answer.pop("key")
            assert key.startswith("kt_gk_") and answer["prefix"] == key[:18]
            assert answer["name"] == "app" and answer["team"] == "payments" and answer["state"] == "active"
            assert answer["scopes"] == ["realtime", "chat"] and answer["models"] == ["gpt-realtime"]
            assert (answer["max_sessions"], answer["messages_per_minute"], answer["daily_tokens"]) == (3, 600, 100000)
            assert answer["expires_at"] is not None
            again = await http.post("/admin/keys", json={"name": "app"})
            assert again.status_code == 409 and again.json()["error"]["code"] == "key_exists"

            listed = (await http.get("/admin/keys")).json()["data"]
            assert [k["name"] for k in listed] == ["ops", "app"]
            assert key not in json.dumps(listed) and admin not in json.dumps(listed)

            # The new key works at once for a session, and revoke --terminate closes it.
            async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"
                revoked = await http.delete("/admin/keys/app", params={"terminate": "true"})
                assert revoked.status_code == 200
                assert revoked.json()["state"] == "revoked" and revoked.json()["sessions_closed"] == 1
                assert await closed_with(ws) == (1008, "key revoked")
            assert (await rejected(gw.ws_url(), bearer(key))).status_code == 401
            assert (await http.delete("/admin/keys/nobody")).status_code == 404
            assert (await http.delete("/admin/keys/app", params={"terminate": "maybe"})).status_code == 400
            # A revoked admin key is refused at once.
            assert (await http.delete("/admin/keys/ops")).status_code == 200
            assert (await http.get("/admin/keys")).status_code == 401
    actions = [(d["action"], d["admin"], d["target"]) for kind, _, d in rows(tmp_path) if kind == "admin"]
    assert actions == [("key_create", "ops", "app"), ("key_revoke", "ops", "app"), ("key_revoke", "ops", "ops")]
    for _, _, data in rows(tmp_path):
        assert key not in json.dumps(data) and admin not in json.dumps(data)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "name is required"),
        ({"name": "x", "colour": "red"}, "unknown field 'colour'"),
        ({"name": "bad name!"}, "invalid key name"),
        ({"name": "x", "scopes": ["root"]}, "unknown scope"),
        ({"name": "x", "scopes": 5}, "list of strings"),
        ({"name": "x", "max_sessions": 0}, "at least 1"),
        ({"name": "x", "daily_tokens": True}, "whole number"),
        ({"name": "x", "expires_in": "soon"}, "bad duration"),
        ({"name": "x", "expires_in": -5}, "expires_in"),
        ({"name": "x", "pack": "elsewhere"}, "no pack 'elsewhere'"),
        ({"name": "x", "models": []}, "at least one model"),
    ],
)
async def test_create_refuses_bad_settings_with_a_clear_400(tmp_path: Path, body: dict[str, Any], words: str) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url, headers=dict(bearer(admin))) as http:
            resp = await http.post("/admin/keys", json=body)
            assert resp.status_code == 400, resp.text
            assert words in resp.json()["error"]["message"]
            assert [k["name"] for k in (await http.get("/admin/keys")).json()["data"]] == ["ops"]


async def test_daily_usd_is_passed_to_the_store(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url, headers=dict(bearer(admin))) as http:
            resp = await http.post("/admin/keys", json={"name": "spender", "daily_usd": 2.5})
            assert resp.status_code == 201 and resp.json()["daily_usd"] == 2.5
            listed = {k["name"]: k for k in (await http.get("/admin/keys")).json()["data"]}
            assert listed["spender"]["daily_usd"] == 2.5 and listed["ops"]["daily_usd"] is None
            for bad_value in (-1, 0, True, "2"):
                bad = await http.post("/admin/keys", json={"name": "x", "daily_usd": bad_value})
                assert bad.status_code == 400 and "daily_usd" in bad.json()["error"]["message"]


async def test_config_is_shown_with_every_secret_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    monkeypatch.setenv("KT_TEST_EVENT_TOKEN", "evt-token-from-env-7f3a")
    secrets = {
        "provider": "sk-provider-secret-91c2",
        "event": "evt-token-from-env-7f3a",
        "event2": "second-event-token-44aa",
        "redis": "redis-pass-5e6f",
        "pg": "pg-pass-0b1c",
        "guard": "guardrail-bearer-8d9e",
    }
    extra = (
        "features:\n  websocket:\n    tokens: ['${KT_TEST_EVENT_TOKEN}', 'second-event-token-44aa']\n"
        "state:\n  redis_url: 'redis://:redis-pass-5e6f@127.0.0.1:6390/0'\n"
        "policy:\n  external-guardrail:\n    url: http://127.0.0.1:9/judge\n"
        "    headers:\n      Authorization: 'Bearer guardrail-bearer-8d9e'\n"
        "store:\n  postgres_dsn: 'host=127.0.0.1 port=5999 user=kt password=pg-pass-0b1c dbname=kt'\n"
    )
    async with running(
        MockBehaviour(mode="echo"),
        state_dir=tmp_path,
        extra=extra,
        secrets={"mock": secrets["provider"]},
    ) as gw:
        async with httpx.AsyncClient(base_url=gw.base_url) as http:
            assert (await http.get("/admin/config")).status_code == 401
            resp = await http.get("/admin/config", headers=dict(bearer(admin)))
    assert resp.status_code == 200
    text = resp.text
    for secret in secrets.values():
        assert secret not in text
    body = resp.json()
    pack = body["packs"][body["default_pack"]]
    assert pack["features"]["websocket"]["tokens"] == ["***", "***"]
    assert pack["state"]["redis_url"] == "redis://:***@127.0.0.1:6390/0"
    assert pack["store"]["postgres_dsn"] == "host=127.0.0.1 port=5999 user=kt password=*** dbname=kt"
    assert pack["policy"]["external-guardrail"]["headers"] == {"Authorization": "***"}
    # What is not secret is shown as configured.
    assert pack["providers"]["targets"][0]["id"] == "mock"
    assert pack["providers"]["targets"][0]["base_url"].startswith("ws://127.0.0.1:")
    assert pack["policies"]["chain"] == []
