"""Azure OpenAI's shapes (issue 19): its clients' inbound URLs and an Azure Realtime upstream.

`openai.AzureOpenAI` talks to the gateway as to an Azure resource (`/openai/deployments/{d}/...`,
`/openai/realtime?api-version=...&deployment=...`, the gateway key in `api-key`), unchanged; an
azure-openai WebSocket target whose `base_url` is the resource URL dials the resource's Realtime
endpoint with its deployment, api-version and `api-key`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
from trio_websocket import open_websocket_url

from conformance.mock_http_upstream import HttpMockBehaviour, open_mock_http_upstream
from conformance.mock_upstream import MockBehaviour, open_mock_upstream
from kt_trio.config import load_config_text
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import SDK_TIMEOUT, SECRETS, chat_config, in_thread
from tests.conftest import running
from tests.helpers import make_key

PHONE = "415-555-0132"


def azure_client(base_url: str, key: str, api_version: str = "2024-10-21", **kw: Any) -> Any:
    import openai

    return openai.AzureOpenAI(
        azure_endpoint=base_url, api_key=key, api_version=api_version, max_retries=0, timeout=SDK_TIMEOUT, **kw
    )


async def test_azure_client_chat_by_deployment_with_the_key_in_api_key(tmp_path: Path) -> None:
    behaviour = HttpMockBehaviour(chunks=["Call me at 415-5", "55-0132 tomorrow"])
    with trio.fail_after(40):
        async with open_mock_http_upstream(behaviour) as mock:
            yaml = chat_config(mock.url, ["pii-detector"])
            yaml += f"gateway:\n  state_dir: {tmp_path}\n  auth:\n    require_keys: true\n"
            key = make_key(tmp_path, "azure-app", scopes=["chat"])
            async with serve_gateway(Gateway(load_config_text(yaml, "azure.yaml"), secrets=SECRETS)) as gw:
                client = azure_client(gw.base_url, key)

                def ask() -> Any:
                    return client.chat.completions.create(
                        model="dep-one", messages=[{"role": "user", "content": f"my number is {PHONE}"}]
                    )

                def stream() -> str:
                    chunks = client.chat.completions.create(
                        model="dep-one", messages=[{"role": "user", "content": "hi"}], stream=True
                    )
                    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

                completion = await in_thread(ask)
                assert completion.choices[0].message.content
                streamed = await in_thread(stream)
                assert PHONE not in streamed and "[REDACTED:PHONE]" in streamed
    first, second = mock.requests
    # The deployment named by the client's URL picked the azure-openai target `az`
    # (deployment dep-one), which the gateway dialled with its own Azure shape and secret.
    assert first.path == "/openai/deployments/dep-one/chat/completions"
    assert parse_qs(first.query)["api-version"] == ["2024-10-21"]
    assert first.headers["api-key"] == SECRETS["az"]
    assert "authorization" not in first.headers
    assert key not in json.dumps(first.headers)
    sent = json.dumps(first.body)
    assert PHONE not in sent and "[REDACTED:PHONE]" in sent
    assert second.path == first.path


async def test_an_unknown_deployment_is_404_and_embeddings_map_by_deployment() -> None:
    with trio.fail_after(40):
        async with open_mock_http_upstream(HttpMockBehaviour()) as mock:
            yaml = chat_config(mock.url, [])
            async with serve_gateway(Gateway(load_config_text(yaml, "azure.yaml"), secrets=SECRETS)) as gw:
                import openai

                client = azure_client(gw.base_url, "anything")

                def ask() -> Any:
                    return client.chat.completions.create(
                        model="nope-deployment", messages=[{"role": "user", "content": "x"}]
                    )

                try:
                    await in_thread(ask)
                    raise AssertionError("an unknown deployment was served")
                except openai.NotFoundError as exc:
                    assert exc.status_code == 404
    assert mock.requests == []


async def test_azure_realtime_target_dials_the_resource_with_deployment_and_api_key() -> None:
    secret = "azure-realtime-secret"
    async with open_mock_upstream(MockBehaviour()) as mock:
        resource = "http://" + urlsplit(mock.url).netloc  # the resource URL, as Azure's portal shows it
        yaml = f"""
providers:
  targets:
    - id: az-rt
      provider: azure-openai
      model: gpt-az-realtime
      base_url: {resource}
      transport: websocket
      deployment: my-realtime
      api_version: 2025-04-01-preview
policies:
  chain: [pii-detector]
"""
        config = load_config_text(yaml, "azure-rt.yaml")
        with trio.fail_after(30):
            async with serve_gateway(Gateway(config, secrets={"az-rt": secret}), mock=mock) as gw:
                url = gw.ws_url(model="gpt-az-realtime")
                await _realtime_round_trip(url, [("Authorization", "Bearer sk-client-habit")], f"call {PHONE}")
                conn = (await mock.wait_for_connections(1))[0]
    path = urlsplit(conn.path)
    assert path.path == "/openai/realtime"
    query = _query(conn.path)
    assert query["api-version"] == ["2025-04-01-preview"] and query["deployment"] == ["my-realtime"]
    assert conn.header("api-key") == secret
    assert conn.header("authorization") is None  # the client's credential never goes upstream
    sent = json.dumps(conn.json_messages())
    assert PHONE not in sent and "[REDACTED:PHONE]" in sent


async def test_azure_python_client_realtime_through_the_gateway(tmp_path: Path) -> None:
    """`AzureOpenAI(...).realtime.connect(model=<deployment>)` reaches the gateway's
    `/openai/realtime?api-version=...&deployment=...` with the gateway key in `api-key`."""
    async with running(
        MockBehaviour(), chain=["pii-detector"], gateway_extra="  auth:\n    require_keys: true\n", state_dir=tmp_path
    ) as gw:
        key = make_key(tmp_path, "azure-voice", scopes=["realtime"])
        client = azure_client(
            gw.base_url, key, api_version="2025-04-01-preview", websocket_base_url=f"ws://127.0.0.1:{gw.port}/openai"
        )

        def converse() -> list[str]:
            seen = []
            with client.realtime.connect(model="gpt-realtime") as conn:
                conn.conversation.item.create(
                    item={
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": f"I am at {PHONE}"}],
                    }
                )
                for event in conn:
                    seen.append(event.type)
                    if event.type == "conversation.item.added":
                        return seen
            return seen

        seen = await in_thread(converse)
        assert "conversation.item.added" in seen
        conn = (await gw.mock.wait_for_connections(1))[0]  # type: ignore[union-attr]
    # Routed by deployment (the mock target's model); Azure's own parameters stay at the gateway
    # and the OpenAI upstream gets the model in its query instead.
    query = _query(conn.path)
    assert "api-version" not in query and "deployment" not in query
    assert query["model"] == ["gpt-realtime"]
    assert key not in json.dumps(conn.headers)
    sent = json.dumps(conn.json_messages())
    assert PHONE not in sent and "[REDACTED:PHONE]" in sent


async def _realtime_round_trip(url: str, headers: list[tuple[str, str]], text: str) -> None:
    async with open_websocket_url(url, extra_headers=headers) as ws:
        await ws.send_message(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
                }
            )
        )
        while True:
            event = json.loads(await ws.get_message())
            if event.get("type") == "conversation.item.added":
                return


def _query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


async def test_azure_client_embeddings_and_responses_map_to_governed_doors() -> None:
    with trio.fail_after(40):
        async with open_mock_http_upstream(HttpMockBehaviour()) as mock:
            yaml = chat_config(mock.url, ["pii-detector"])
            async with serve_gateway(Gateway(load_config_text(yaml, "azure.yaml"), secrets=SECRETS)) as gw:
                client = azure_client(gw.base_url, "anything", api_version="2025-04-01-preview")
                embedded = await in_thread(
                    lambda: client.embeddings.create(model="dep-one", input=[f"reach me on {PHONE}"])
                )
                assert len(embedded.data) == 1
                answered = await in_thread(lambda: client.responses.create(model="gpt-az", input=f"I am {PHONE}"))
                assert answered.output_text
    embeddings, responses = mock.requests
    assert embeddings.path == "/openai/deployments/dep-one/embeddings"
    assert embeddings.headers["api-key"] == SECRETS["az"]
    assert PHONE not in json.dumps(embeddings.body) and "[REDACTED:PHONE]" in json.dumps(embeddings.body)
    assert responses.path == "/openai/responses"
    assert responses.headers["api-key"] == SECRETS["az"]
    assert PHONE not in json.dumps(responses.body)
