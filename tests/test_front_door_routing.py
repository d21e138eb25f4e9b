"""Routing doors (issue 13): paths normalised before routing, one allow-list of headers that go
upstream, repeated routing parameters refused, 502 bodies that name no internal host. Real
gateway, real mock providers (WebSocket and HTTP), raw sockets where a client would normalise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from trio_websocket import open_websocket_url

from kt_trio.config import load_config_text
from kt_trio.mocks.http import MockHttpUpstream, open_mock_http_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.testing import RunningGateway, serve_gateway
from tests.chat_fixtures import SECRETS, chat_config
from tests.conftest import running
from tests.helpers import rejected

BROWSER_AND_PROXY = [
    ("Cookie", "session=browser-secret"),
    ("Origin", "https://evil.example"),
    ("X-Forwarded-For", "10.9.8.7"),
    ("X-Forwarded-Host", "internal.example"),
    ("Forwarded", "for=10.9.8.7"),
    ("X-Client-Request-Id", "req-1"),
]


@asynccontextmanager
async def http_gateway() -> AsyncIterator[tuple[RunningGateway, MockHttpUpstream]]:
    with trio.fail_after(30):
        async with open_mock_http_upstream() as mock:
            config = load_config_text(chat_config(mock.url, []))
            async with serve_gateway(Gateway(config, secrets=SECRETS)) as gw:
                yield gw, mock


async def raw_get(port: int, target: str, headers: list[tuple[str, str]] = ()) -> tuple[int, bytes]:
    """A GET with the target exactly as written (no client-side normalisation, like --path-as-is)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        await stream.send_all(f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n".encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_dot_segments_never_reach_the_provider() -> None:
    async with http_gateway() as (gw, mock):
        for target in ("/v1/../admin", "/v1/%2e%2e/admin", "/v1/files/..%2f..%2fadmin", "/v1\\..\\admin"):
            status, _ = await raw_get(gw.port, target)
            assert status == 404, target  # routed as /admin: not a gateway route
        for target in ("/v1/../../admin", "/%2E%2E/v1/files", "/v1/files/%2e%2e/%2e%2e/%2e%2e/x"):
            status, body = await raw_get(gw.port, target)
            assert status == 400, target
            assert json.loads(body)["error"]["code"] == "invalid_path"
        assert mock.requests == []


async def test_normalised_path_is_what_passes_through() -> None:
    async with http_gateway() as (gw, mock):
        status, _ = await raw_get(gw.port, "//v1//files/./x/../file-abc")
        assert status == 200
        assert mock.requests[-1].path == "/v1/files/file-abc"


async def test_only_allowed_headers_pass_through_http() -> None:
    async with http_gateway() as (gw, mock):
        status, _ = await raw_get(gw.port, "/v1/files/file-abc", BROWSER_AND_PROXY)
        assert status == 200
        sent = mock.requests[-1].headers
        for name in ("cookie", "origin", "x-forwarded-for", "x-forwarded-host", "forwarded"):
            assert name not in sent, name
        assert sent["x-client-request-id"] == "req-1"
        assert sent["authorization"] == "Bearer sk-openai-target"


async def test_only_allowed_headers_pass_through_websocket() -> None:
    async with running() as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=BROWSER_AND_PROXY) as ws:
            await ws.get_message()
        conn = gw.mock.connections[0]
        for name in ("cookie", "origin", "x-forwarded-for", "x-forwarded-host", "forwarded"):
            assert conn.header(name) is None, name
        assert conn.header("x-client-request-id") == "req-1"


async def test_repeated_routing_parameters_are_refused() -> None:
    async with running() as gw:
        refusal = await rejected(gw.ws_url() + "?model=gpt-realtime&model=gpt-4.1-mini")
        assert refusal.status_code == 400
        assert json.loads(refusal.body)["error"]["code"] == "duplicate_parameter"
        refusal = await rejected(gw.ws_url() + "?deployment=a&deployment=b")
        assert refusal.status_code == 400
        assert gw.mock.connections == []
    async with http_gateway() as (gw, mock):
        status, body = await raw_get(gw.port, "/v1/files/file-abc?model=a&x=1&model=b")
        assert status == 400 and json.loads(body)["error"]["code"] == "duplicate_parameter"
        assert mock.requests == []


async def test_provider_reserved_parameters_are_refused() -> None:
    """A credential in the query would reach the provider beside the target's own key; Azure's
    routing parameters mean something only on Azure's `/openai/` paths (issue 13)."""
    async with running() as gw:
        for query in ("?model=gpt-realtime&api-key=sk-smuggled", "?deployment=other", "?api-version=2024-10-21"):
            refusal = await rejected(gw.ws_url() + query)
            assert refusal.status_code == 400, query
            assert json.loads(refusal.body)["error"]["code"] == "unsupported_parameter", query
            assert b"sk-smuggled" not in refusal.body
        assert gw.mock.connections == []
    async with http_gateway() as (gw, mock):
        status, body = await raw_get(gw.port, "/v1/files/file-abc?access_token=tok")
        assert status == 400 and json.loads(body)["error"]["code"] == "unsupported_parameter"
        assert mock.requests == []


async def test_502_bodies_do_not_name_internal_hosts() -> None:
    async with http_gateway() as (gw, _):
        # chat_config's `realtime` target is ws://127.0.0.1:1, where nothing listens.
        refusal = await rejected(gw.ws_url(model="gpt-realtime"))
        assert refusal.status_code == 502
        body = refusal.body.decode()
        assert json.loads(body)["error"]["code"] == "upstream_unreachable"
        assert "127.0.0.1" not in body and ":1" not in body
