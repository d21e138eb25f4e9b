"""`/v1/chat/completions` and `/v1/models` on the gateway's own port, behind the front door."""

from __future__ import annotations

from pathlib import Path

import trio

from kt_trio.config import load_config_text
from kt_trio.mocks.http import HttpMockBehaviour, open_mock_http_upstream
from kt_trio.records import ResponseUsage
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import CLIENT_KEY, SECRETS, chat_config, in_thread, openai_client
from tests.helpers import make_key


async def test_openai_sdk_through_the_gateway_port(tmp_path: Path) -> None:
    import openai

    behaviour = HttpMockBehaviour(chunks=["Call me at 415-5", "55-0132 tomorrow"])
    with trio.fail_after(30):
        async with open_mock_http_upstream(behaviour) as mock:
            yaml = chat_config(mock.url, ["pii-detector"]) + f"gateway:\n  state_dir: {tmp_path}\n"
            key = make_key(tmp_path, "chat-app", scopes=["chat"])
            realtime_only = make_key(tmp_path, "voice-app", scopes=["realtime"])
            gateway = Gateway(load_config_text(yaml, "chat.yaml"), secrets=SECRETS)
            usage: list[ResponseUsage] = []
            gateway.reporter.add_sink(lambda sid, rec: usage.append(rec) if isinstance(rec, ResponseUsage) else None)
            async with serve_gateway(gateway) as gw:

                def client_for(api_key: str) -> openai.OpenAI:
                    return openai_client(gw.base_url, api_key)

                def ask(api_key: str) -> object:
                    return client_for(api_key).chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
                    )

                try:
                    await in_thread(lambda: ask(realtime_only))
                    raise AssertionError("a key without the chat scope was accepted")
                except openai.PermissionDeniedError as exc:
                    assert exc.status_code == 403
                try:
                    await in_thread(lambda: ask(CLIENT_KEY))  # a kt_gk_ key the gateway never issued
                    raise AssertionError("an unknown gateway key was accepted")
                except openai.AuthenticationError as exc:
                    assert exc.status_code == 401
                client = client_for(key)
                models = await in_thread(lambda: [m.id for m in client.models.list()])
                assert "gpt-4o-mini" in models

                def stream() -> str:
                    chunks = client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
                    )
                    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

                text = await in_thread(stream)
                assert "415-555-0132" not in text and "[REDACTED:PHONE]" in text
                # The same port still serves WebSocket sessions and health.
                assert gw.gateway.port == gw.port
        assert all(key not in repr(r.headers) for r in mock.requests)
        assert len(mock.requests) == 1  # the refused requests never left the gateway
        assert usage and usage[-1].usage.total_tokens > 0
