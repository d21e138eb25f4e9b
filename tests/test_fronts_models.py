"""`keys create --models`: a key (and its client secrets) may use only those models, on every
door: WebSocket handshakes, each `response.create` / `session.update` in a session, and every
governed HTTP route."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url

from kt_trio.config import load_config_text
from kt_trio.keys.cli import list_command
from kt_trio.mocks.http import open_mock_http_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import SECRETS, chat_config
from tests.conftest import running
from tests.helpers import bearer, make_key, rejected_status

REQUIRE = "  auth:\n    require_keys: true\n"


async def test_every_http_door_and_handshake_refuses_another_model(tmp_path: Path) -> None:
    key = make_key(tmp_path, "mini-only", models=["gpt-4o-mini"])
    with trio.fail_after(30):
        async with open_mock_http_upstream() as mock:
            yaml = chat_config(mock.url, ["pii-detector"]) + f"gateway:\n  state_dir: {tmp_path}\n"
            async with serve_gateway(Gateway(load_config_text(yaml), secrets=SECRETS)) as gw:
                headers = {"authorization": f"Bearer {key}"}
                async with httpx.AsyncClient(base_url=gw.base_url, headers=headers) as client:
                    for path, body in [
                        ("/v1/chat/completions", {"model": "gpt-az", "messages": [{"role": "user", "content": "hi"}]}),
                        ("/v1/responses", {"model": "claude-test", "input": "hi"}),
                        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}),
                        ("/v1/realtime/client_secrets", {"session": {"type": "realtime", "model": "gpt-realtime"}}),
                    ]:
                        resp = await client.post(path, json=body)
                        assert resp.status_code == 403, path
                        assert (
                            resp.json()["error"]["code"] == "model_not_allowed"
                            and resp.json()["error"]["param"] is None
                        )
                    assert [m["id"] for m in (await client.get("/v1/models")).json()["data"]] == ["gpt-4o-mini"]
                    ok = await client.post("/v1/responses", json={"model": "gpt-4o-mini", "input": "hi"})
                    assert ok.status_code == 200
                    # A client secret carries the key's models.
                    minted = await client.post("/v1/realtime/client_secrets", json={})
                    secret = minted.json()["value"]
                    other = await client.post(
                        "/v1/chat/completions",
                        json={"model": "gpt-az", "messages": [{"role": "user", "content": "hi"}]},
                        headers={"authorization": f"Bearer {secret}"},
                    )
                    assert other.status_code == 403 and other.json()["error"]["code"] == "model_not_allowed"
                assert await rejected_status(gw.ws_url(model="gpt-realtime"), bearer(key)) == 403
                assert await rejected_status(gw.ws_url(model="gpt-realtime"), bearer(secret)) == 403
    assert [r.path for r in mock.requests] == ["/v1/responses"]


async def test_a_response_create_naming_another_model_is_an_error_event_and_not_forwarded(tmp_path: Path) -> None:
    key = make_key(tmp_path, "responses-app", models=["gpt-4.1-mini"])
    async with running(state_dir=tmp_path, gateway_extra=REQUIRE) as gw:
        assert await rejected_status(gw.ws_url("/v1/realtime", model="gpt-realtime"), bearer(key)) == 403
        url = gw.ws_url("/v1/responses", model="gpt-4.1-mini")
        async with open_websocket_url(url, extra_headers=bearer(key)) as ws:
            await ws.send_message(json.dumps({"type": "response.create", "model": "gpt-5", "input": "hi"}))
            error = json.loads(await ws.get_message())
            assert error["type"] == "error" and error["error"]["code"] == "model_not_allowed"
            assert error["status"] == 400 and error["error"]["param"] is None
            await ws.send_message(json.dumps({"type": "response.create", "model": "gpt-4.1-mini", "input": "hi"}))
            kinds = []
            while not kinds or kinds[-1] != "response.completed":
                kinds.append(json.loads(await ws.get_message())["type"])
        sent = [m.get("model") for m in gw.mock.connections[0].json_messages() if m.get("type") == "response.create"]
        assert sent == ["gpt-4.1-mini"]


def test_keys_create_models_is_listed(tmp_path: Path, capsys: object) -> None:
    from kt_trio.cli import main

    assert (
        main(["keys", "create", "--name", "m", "--models", "gpt-4o, gpt-realtime", "--state-dir", str(tmp_path)]) == 0
    )
    assert main(["keys", "list", "--json", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    listed = json.loads(out[out.index("[") :])
    assert listed[0]["models"] == ["gpt-4o", "gpt-realtime"]
    assert list_command is not None
