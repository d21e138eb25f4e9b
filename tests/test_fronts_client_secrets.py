"""`POST /v1/realtime/client_secrets`: `kt_ek_` secrets minted by the gateway for a key, opening
Realtime sessions from a browser's subprotocol until they expire or their key is revoked."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from tests.chat_fixtures import in_thread, openai_client
from tests.conftest import running
from tests.helpers import bearer, make_key, rejected_status, revoke

REQUIRE = "  auth:\n    require_keys: true\n"


def browser(secret: str) -> list[str]:
    return ["realtime", f"openai-insecure-api-key.{secret}"]


async def opens_session(url: str, secret: str) -> bool:
    try:
        async with open_websocket_url(url, subprotocols=browser(secret)) as ws:
            await ws.send_message("ping")
            return await ws.get_message() == "ping"
    except Exception:
        return False


async def wait_until_refused(url: str, secret: str) -> int:
    """Polls the handshake until the gateway refuses the secret (the test's deadline bounds it)."""
    while True:
        try:
            async with open_websocket_url(url, subprotocols=browser(secret)):
                pass
        except ConnectionRejected as exc:
            return exc.status_code
        await trio.sleep(0.05)


async def test_the_openai_sdk_mints_a_secret_that_opens_a_session_until_it_expires(tmp_path: Path) -> None:
    key = make_key(tmp_path, "voice-app", team="web")
    chat_only = make_key(tmp_path, "chat-app", scopes=["chat"])
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path, gateway_extra=REQUIRE) as gw:
        client = openai_client(gw.base_url, key)
        secret = await in_thread(
            lambda: client.realtime.client_secrets.create(
                expires_after={"anchor": "created_at", "seconds": 2},
                session={"type": "realtime", "model": "gpt-realtime"},
            )
        )
        assert secret.value.startswith("kt_ek_") and secret.expires_at > 0
        assert secret.session is not None and secret.session.model == "gpt-realtime"
        handshakes = gw.mock.handshake_count
        assert handshakes == 0  # the provider is never called to mint it
        assert await opens_session(gw.ws_url(), secret.value)
        summary = gw.gateway.recent_summaries
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert (summary[-1].key_name, summary[-1].team) == ("voice-app", "web")
        assert secret.value not in repr(gw.mock.connections[0].headers) + repr(gw.mock.connections[0].subprotocols)
        # Accepted wherever the key is: Bearer on HTTP too (chat scope is the key's).
        async with httpx.AsyncClient() as http:
            resp = await http.get(f"{gw.base_url}/v1/models", headers={"authorization": f"Bearer {secret.value}"})
        assert resp.status_code == 200
        assert await wait_until_refused(gw.ws_url(), secret.value) == 401

        # A key without the realtime scope cannot mint; the default is 600 s; more than 7200 is 400.
        def refused(api_key: str, **kw: object) -> int:
            with pytest.raises(openai.APIStatusError) as info:
                openai_client(gw.base_url, api_key).realtime.client_secrets.create(**kw)  # type: ignore[arg-type]
            return info.value.status_code

        assert await in_thread(lambda: refused(chat_only)) == 403
        assert await in_thread(lambda: refused(key, expires_after={"anchor": "created_at", "seconds": 7201})) == 400
        default = await in_thread(lambda: client.realtime.client_secrets.create())
        assert 598 <= default.expires_at - time.time() <= 600


async def test_revoking_the_key_revokes_its_secrets(tmp_path: Path) -> None:
    key = make_key(tmp_path, "voice-app")
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path, gateway_extra=REQUIRE) as gw:
        async with httpx.AsyncClient() as http:
            resp = await http.post(
                f"{gw.base_url}/v1/realtime/client_secrets",
                json={},
                headers={"authorization": f"Bearer {key}"},
            )
        assert resp.status_code == 200
        body = resp.json()
        assert set(body) == {"value", "expires_at", "session"}
        secret = body["value"]
        assert await opens_session(gw.ws_url(), secret)
        revoke(tmp_path, "voice-app", terminate=False)
        assert await rejected_status(gw.ws_url(), bearer(secret)) == 401
        assert not await opens_session(gw.ws_url(), secret)
        assert await rejected_status(gw.ws_url(), bearer("kt_ek_" + "x" * 43)) == 401
