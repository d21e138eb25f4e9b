"""`/v1/chat/completions` and `/v1/models` on the gateway's own port, behind the front door."""

from __future__ import annotations

from pathlib import Path

import trio

from conformance.mock_http_upstream import HttpMockBehaviour, open_mock_http_upstream
from kt_trio.config import load_config_text
from kt_trio.records import ResponseUsage
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import CLIENT_KEY, SECRETS, chat_config, in_thread


async def test_openai_sdk_through_the_gateway_port(tmp_path: Path) -> None:
    import openai

    behaviour = HttpMockBehaviour(chunks=["Call me at 415-5", "55-0132 tomorrow"])
    with trio.fail_after(30):
        async with open_mock_http_upstream(behaviour) as mock:
            yaml = chat_config(mock.url, ["pii-detector"]) + f"gateway:\n  state_dir: {tmp_path}\n"
            gateway = Gateway(load_config_text(yaml, "chat.yaml"), secrets=SECRETS)
            usage: list[ResponseUsage] = []
            gateway.reporter.add_sink(lambda sid, rec: usage.append(rec) if isinstance(rec, ResponseUsage) else None)
            async with serve_gateway(gateway) as gw:
                client = openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=CLIENT_KEY, max_retries=0)
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
        assert all(CLIENT_KEY not in repr(r.headers) for r in mock.requests)
        assert usage and usage[-1].usage.total_tokens > 0
