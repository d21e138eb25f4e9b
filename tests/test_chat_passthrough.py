"""Other `/v1/*` requests through a real gateway to the default OpenAI target: credentials
swapped, bodies streamed both ways (not buffered), the breaker and the key check as for chat."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

from kt_trio.config import load_config_text
from kt_trio.mocks.http import HttpMockBehaviour, MockHttpUpstream, file_content, open_mock_http_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.testing import RunningGateway, serve_gateway
from tests.chat_fixtures import SECRETS, chat_config, in_thread, openai_client
from tests.helpers import make_key, rows

# A provider key an SDK sends by habit to an anonymous gateway: ignored, and never forwarded.
CLIENT_KEY = "sk-client-own-key-do-not-forward"


@asynccontextmanager
async def gateway_with(
    behaviour: HttpMockBehaviour | None = None, *, yaml: str | None = None, extra: str = ""
) -> AsyncIterator[tuple[RunningGateway, MockHttpUpstream]]:
    with trio.fail_after(30):
        async with open_mock_http_upstream(behaviour) as mock:
            config = load_config_text(yaml.format(mock=mock.url) if yaml else chat_config(mock.url, [], extra))
            async with serve_gateway(Gateway(config, secrets=SECRETS)) as gw:
                yield gw, mock


def assert_credentials_swapped(mock: MockHttpUpstream) -> None:
    assert mock.requests
    for req in mock.requests:
        assert req.headers["authorization"] == "Bearer sk-openai-target"  # the first openai http target
        assert all(CLIENT_KEY not in v for v in req.headers.values())
        assert "api-key" not in req.headers


async def test_embeddings_and_files_pass_through_with_the_credentials_swapped() -> None:
    behaviour = HttpMockBehaviour(file_size=300_000)
    async with gateway_with(behaviour) as (gw, mock):
        client = openai_client(gw.base_url, CLIENT_KEY)
        emb = await in_thread(
            lambda: client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
        )
        assert [d.embedding for d in emb.data] == [[0.5, -0.25, 0.125]] * 2
        info = await in_thread(lambda: client.files.retrieve("file-abc"))
        assert info.id == "file-abc" and info.bytes == 300_000
        content = await in_thread(lambda: client.files.content("file-abc").read())
        assert content == file_content(300_000)
        async with httpx.AsyncClient() as raw:
            resp = await raw.get(
                f"{gw.base_url}/v1/files/file-abc?limit=2&after=x%20y", headers={"api-key": CLIENT_KEY}
            )
        assert resp.status_code == 200
    paths = [(r.method, r.path, r.query) for r in mock.requests]
    assert paths == [
        ("POST", "/v1/embeddings", ""),
        ("GET", "/v1/files/file-abc", ""),
        ("GET", "/v1/files/file-abc/content", ""),
        ("GET", "/v1/files/file-abc", "limit=2&after=x%20y"),
    ]
    assert mock.requests[0].body == {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"}
    assert_credentials_swapped(mock)


async def test_a_large_response_streams_through_before_the_upstream_has_finished() -> None:
    # The mock sends its first 64 KiB and then waits until the client has them: a gateway that
    # buffered the response would never let them through, and the test would time out.
    size = 8 * 1024 * 1024
    first_arrived = trio.Event()
    behaviour = HttpMockBehaviour(file_size=size, hold_after_first_chunk=first_arrived)
    async with gateway_with(behaviour) as (gw, mock):
        digest = hashlib.sha256()
        received = 0
        async with httpx.AsyncClient() as client:
            async with client.stream("GET", f"{gw.base_url}/v1/files/big/content") as resp:
                assert resp.status_code == 200 and resp.headers["content-length"] == str(size)
                async for chunk in resp.aiter_raw():
                    digest.update(chunk)
                    received += len(chunk)
                    first_arrived.set()
        assert received == size
        assert digest.hexdigest() == hashlib.sha256(file_content(size)).hexdigest()
        assert_credentials_swapped(mock)


async def test_a_large_upload_streams_upstream_as_it_arrives() -> None:
    # The client holds back the second half of its body until the upstream has seen the first.
    part = file_content(4 * 1024 * 1024)
    async with gateway_with() as (gw, mock):

        async def body() -> AsyncIterator[bytes]:
            yield part
            await mock.body_started.wait()
            yield part

        async with httpx.AsyncClient(timeout=20) as client:
            resp = await client.post(
                f"{gw.base_url}/v1/files",
                content=body(),
                headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/octet-stream"},
            )
        assert resp.status_code == 200 and resp.json()["bytes"] == 2 * len(part)
        assert mock.requests[0].raw == part + part
        assert_credentials_swapped(mock)


async def test_the_upstream_error_status_passes_through_and_counts_for_the_breaker() -> None:
    async with gateway_with(HttpMockBehaviour(status=500), extra="") as (gw, mock):
        async with httpx.AsyncClient() as client:
            statuses = [(await client.get(f"{gw.base_url}/v1/files/x")).status_code for _ in range(6)]
        # failure_threshold defaults to 5: the sixth request never reaches the upstream.
        assert statuses == [500] * 5 + [503]
        assert len(mock.requests) == 5


async def test_no_openai_target_is_404_and_an_unreachable_one_is_502() -> None:
    only_anthropic = """
providers:
  targets:
    - id: claude
      provider: anthropic
      model: claude-test
      base_url: {mock}
"""
    async with gateway_with(yaml=only_anthropic) as (gw, mock):
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"{gw.base_url}/v1/files/x")
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
        assert mock.requests == []
    unreachable = """
providers:
  targets:
    - id: oa
      provider: openai
      model: gpt-4o-mini
      base_url: http://127.0.0.1:1/v1
"""
    async with gateway_with(yaml=unreachable) as (gw, _):
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"{gw.base_url}/v1/files/x")
        assert resp.status_code == 502 and resp.json()["error"]["code"] == "upstream_unreachable"


async def test_passthrough_needs_a_key_with_the_chat_scope_when_keys_are_required(tmp_path: Path) -> None:
    chat_key = make_key(tmp_path, "chat-app", scopes=["chat"])
    voice_key = make_key(tmp_path, "voice-app", scopes=["realtime"])
    extra = f"gateway:\n  state_dir: {tmp_path}\n  auth:\n    require_keys: true\n"
    async with gateway_with(extra=extra) as (gw, mock):
        async with httpx.AsyncClient() as client:
            url = f"{gw.base_url}/v1/files/x"
            assert (await client.get(url)).status_code == 401
            assert (await client.get(url, headers={"authorization": f"Bearer {voice_key}"})).status_code == 403
            assert (await client.get(url, headers={"authorization": f"Bearer {chat_key}"})).status_code == 200
        assert len(mock.requests) == 1
        assert all(chat_key not in v for v in mock.requests[0].headers.values())


async def test_passed_through_requests_are_audited_without_their_bodies(tmp_path: Path) -> None:
    key = make_key(tmp_path, "files-app", scopes=["chat"], team="data")
    audit = "policy:\n  audit-logger: {log_all_access: true, include_content: true, durability: strict}\n"
    behaviour = HttpMockBehaviour(file_size=4096)
    async with open_mock_http_upstream(behaviour) as mock:
        text = chat_config(mock.url, ["audit-logger"], audit) + f"gateway:\n  state_dir: {tmp_path}\n"
        async with serve_gateway(Gateway(load_config_text(text), secrets=SECRETS)) as gw:
            client = openai_client(gw.base_url, key)
            content = await in_thread(lambda: client.files.content("file-abc").read())
            assert content == file_content(4096)
            # Strict durability: the request's start was committed before it went upstream. Its
            # end follows the last bytes (a passed-through body's last chunk is known only at
            # its end), so it is read once the gateway has stopped.
            assert rows(tmp_path)[0][0] == "session_start"
    records = rows(tmp_path)
    kinds = [kind for kind, _, _ in records]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end"
    start, end = records[0][2], records[-1][2]
    assert start["route"] == "/v1/files/file-abc/content" and (start["key_name"], start["team"]) == (
        "files-app",
        "data",
    )
    assert end["close_code"] == 200 and end["bytes_out"] == 4096
    assert all(data.get("content") is None for kind, _, data in records if kind == "message")
    assert records[0][1].startswith("http_")
