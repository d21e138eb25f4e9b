"""Routing by model family (issue 19): a model no target names goes to a target of its family's
provider, the client's model name kept; `providers.routing.by_family: false` turns it off."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import trio
from trio_websocket import open_websocket_url

from conformance.mock_http_upstream import HttpMockBehaviour, open_mock_http_upstream
from conformance.mock_upstream import MockBehaviour
from kt_trio.config import load_config_text
from kt_trio.config.routing import family_providers, pick_target
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import SECRETS, chat_config, in_thread, openai_client
from tests.conftest import running
from tests.helpers import rejected_status


def test_families_and_their_providers() -> None:
    assert family_providers("gpt-5-mini") == ("openai", "azure-openai")
    assert family_providers("o3-pro") == ("openai", "azure-openai")
    assert family_providers("text-embedding-3-large") == ("openai", "azure-openai")
    assert family_providers("Claude-Opus-4") == ("anthropic",)
    assert family_providers("llama-3.1-70b") == ()


def test_pick_target_prefers_names_then_family_in_config_order() -> None:
    config = load_config_text(chat_config("http://127.0.0.1:9", []))
    http = [t for t in config.providers.targets if t.effective_transport == "http"]
    assert pick_target(http, "gpt-az").id == "az"  # type: ignore[union-attr]
    assert pick_target(http, "claude").id == "claude"  # type: ignore[union-attr]  # by id
    assert pick_target(http, "gpt-5").id == "oa"  # type: ignore[union-attr]  # openai before azure
    assert pick_target(http, "claude-opus-4-1").id == "claude"  # type: ignore[union-attr]
    assert pick_target(http, "llama-3") is None
    assert pick_target(http, "gpt-5", by_family=False) is None
    assert pick_target(http, None, deployment="dep-one").id == "az"  # type: ignore[union-attr]
    azure_only = [t for t in http if t.provider == "azure-openai"]
    assert pick_target(azure_only, "gpt-5").id == "az"  # type: ignore[union-attr]


async def test_chat_routes_an_unnamed_model_by_family_and_keeps_its_name() -> None:
    import openai

    with trio.fail_after(40):
        async with open_mock_http_upstream(HttpMockBehaviour()) as mock:
            config = load_config_text(chat_config(mock.url, []), "family.yaml")
            async with serve_gateway(Gateway(config, secrets=SECRETS)) as gw:
                client = openai_client(gw.base_url, "sk-anything")

                def ask(model: str) -> Any:
                    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])

                await in_thread(lambda: ask("gpt-5-mini"))
                await in_thread(lambda: ask("claude-opus-4-1"))
                with pytest.raises(openai.NotFoundError):
                    await in_thread(lambda: ask("llama-3.1-70b"))
    to_openai, to_anthropic = mock.requests
    assert to_openai.path == "/v1/chat/completions" and to_openai.body["model"] == "gpt-5-mini"
    assert to_openai.headers["authorization"] == f"Bearer {SECRETS['oa']}"
    assert to_anthropic.path.endswith("/messages") and to_anthropic.body["model"] == "claude-opus-4-1"


async def test_chat_by_family_off_is_404() -> None:
    import openai

    with trio.fail_after(40):
        async with open_mock_http_upstream(HttpMockBehaviour()) as mock:
            yaml = chat_config(mock.url, []).replace(
                "providers:\n", "providers:\n  routing:\n    by_family: false\n", 1
            )
            async with serve_gateway(Gateway(load_config_text(yaml, "nofamily.yaml"), secrets=SECRETS)) as gw:
                client = openai_client(gw.base_url, "sk-anything")
                with pytest.raises(openai.NotFoundError):
                    await in_thread(
                        lambda: client.chat.completions.create(
                            model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}]
                        )
                    )
    assert mock.requests == []


async def test_websocket_routes_a_realtime_model_by_family_with_the_model_in_the_query() -> None:
    async with running(MockBehaviour()) as gw:
        async with open_websocket_url(gw.ws_url(model="gpt-realtime-mini-2026")) as ws:
            assert json.loads(await ws.get_message())["type"] == "session.created"
        conn = (await gw.mock.wait_for_connections(1))[0]  # type: ignore[union-attr]
        assert parse_qs(urlsplit(conn.path).query)["model"] == ["gpt-realtime-mini-2026"]
        assert await rejected_status(gw.ws_url(model="mistral-large")) == 404


async def test_websocket_by_family_off_is_404() -> None:
    async with running(MockBehaviour(), providers_extra="  routing:\n    by_family: false\n") as gw:
        assert await rejected_status(gw.ws_url(model="gpt-realtime-mini-2026")) == 404
        assert gw.mock is not None and gw.mock.handshake_count == 0
