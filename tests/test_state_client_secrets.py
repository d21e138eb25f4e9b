"""`kt_ek_` client secrets on `state.backend: redis`: minted by one gateway process, accepted by
every process sharing the Redis (two instances, and `serve --workers 2`), ended by revoking the
key or by expiry everywhere; real processes, a real redis-server, the official openai SDK."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.chat_fixtures import in_thread, openai_client
from tests.cluster import Instance, cluster_config, eventually, open_cluster, start_instance
from tests.helpers import bearer, make_key
from tests.redis_server import RedisServer, open_redis
from tests.test_workers import worker_pids

pytestmark = pytest.mark.trio

REQUIRE_KEYS = "gateway:\n  auth:\n    require_keys: true\n"


def config_text(mock_url: str, redis_url: str, state_dir: Path, **kw: Any) -> str:
    text = cluster_config(mock_url, redis_url, state_dir, **kw)
    return text.replace("gateway:\n", REQUIRE_KEYS, 1)


@asynccontextmanager
async def two_instances(state_dir: Path, **kw: Any) -> AsyncIterator[tuple[RedisServer, Any, Instance, Instance]]:
    """A Redis, an echoing mock provider, and two gateway processes sharing both (and keys.db)."""
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = state_dir / "gw.yaml"
        config.write_text(config_text(mock.url, redis.url, state_dir, **kw))
        async with open_cluster(config) as (a, b):
            yield redis, mock, a, b


def base_url(instance: Instance) -> str:
    return f"http://127.0.0.1:{instance.port}"


def browser(secret: str) -> list[str]:
    return ["realtime", f"openai-insecure-api-key.{secret}"]


async def mint(instance: Instance, key: str, seconds: int = 600) -> str:
    """A secret from `instance`, through the openai SDK as an application's backend gets one."""
    client = openai_client(base_url(instance), key)
    created = await in_thread(
        lambda: client.realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": seconds},
            session={"type": "realtime", "model": "gpt-realtime"},
        )
    )
    assert created.value.startswith("kt_ek_")
    return str(created.value)


async def handshake(instance: Instance, secret: str) -> tuple[int | None, str | None]:
    """(None, None) when a session opened with `secret` from the browser subprotocol and echoed a
    message; else the refusal's (status, error code)."""
    try:
        async with open_websocket_url(instance.ws_url(), subprotocols=browser(secret)) as ws:
            await ws.send_message("ping")
            assert await ws.get_message() == "ping"
            return None, None
    except ConnectionRejected as exc:
        body = json.loads(exc.body) if exc.body else {}
        return exc.status_code, body.get("error", {}).get("code")


async def stored(redis: RedisServer, secret: str) -> str | None:
    return await redis.command("GET", f"kt:ek:{hashlib.sha256(secret.encode()).hexdigest()}")  # type: ignore[no-any-return]


async def test_a_secret_minted_on_one_instance_opens_sessions_on_another_until_its_key_is_revoked(
    tmp_path: Path,
) -> None:
    key = make_key(tmp_path, "voice-app", team="web")
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with two_instances(tmp_path) as (redis, mock, a, b), httpx.AsyncClient() as http:
        with trio.fail_after(30):
            secret = await mint(a, key)
            # Redis holds the digest with the key's name and expiry, never the secret.
            record = await stored(redis, secret)
            assert record is not None and json.loads(record)["key"] == "voice-app"
            assert secret not in record and secret.removeprefix("kt_ek_") not in record
            assert 590_000 <= await redis.command("PTTL", f"kt:ek:{hashlib.sha256(secret.encode()).hexdigest()}")
            assert mock.handshake_count == 0  # minting never calls the provider

            assert await handshake(b, secret) == (None, None)
            assert await handshake(b, secret) == (None, None)  # again, from B's cache
            assert await handshake(a, secret) == (None, None)
            models = await http.get(f"{base_url(b)}/v1/models", headers={"authorization": f"Bearer {secret}"})
            assert models.status_code == 200
            assert (await handshake(b, "kt_ek_" + "x" * 43))[0] == 401  # unknown on B as on A

            # Revoked through A's admin API: B refuses the secret at its next handshake.
            revoked = await http.delete(f"{base_url(a)}/admin/keys/voice-app", headers=dict(bearer(admin)))
            assert revoked.status_code == 200
            assert await handshake(b, secret) == (401, "invalid_key")
            assert await handshake(a, secret) == (401, "invalid_key")


async def test_a_secret_stops_working_on_every_instance_when_it_expires(tmp_path: Path) -> None:
    key = make_key(tmp_path, "voice-app")
    async with two_instances(tmp_path) as (redis, _mock, a, b):
        with trio.fail_after(30):
            secret = await mint(a, key, seconds=2)
            assert await handshake(b, secret) == (None, None)  # B has it cached from here on

        async def refused_on_b() -> bool:
            return await handshake(b, secret) == (401, "invalid_key")

        async def gone_from_redis() -> bool:
            return await stored(redis, secret) is None

        await eventually(refused_on_b, deadline=2 + 5)
        await eventually(gone_from_redis, deadline=5)  # Redis dropped it with its TTL
        assert await handshake(a, secret) == (401, "invalid_key")


@pytest.mark.parametrize("on_unavailable", ["fail_closed", "fail_open"])
async def test_redis_unavailable_refuses_secrets_only_redis_knows_and_its_return_restores_them(
    tmp_path: Path, on_unavailable: str
) -> None:
    key = make_key(tmp_path, "voice-app")
    async with two_instances(tmp_path, on_unavailable=on_unavailable) as (redis, _mock, a, b):
        with trio.fail_after(30):
            secret = await mint(a, key)
            await redis.kill()
            # B never saw the secret and cannot ask: 503 `state_unavailable` in both modes
            # (fail_open relaxes shared limits, never authentication)...
            assert await handshake(b, secret) == (503, "state_unavailable")
            local = None
            if on_unavailable == "fail_open":
                # ... A minted it and still knows it, and admits on its own limits;
                assert await handshake(a, secret) == (None, None)
                # minting goes on, the secret known to this process only until Redis is back.
                local = await mint(a, key)
                assert await handshake(a, local) == (None, None)
                assert await handshake(b, local) == (503, "state_unavailable")
            else:
                assert await handshake(a, secret) == (503, "state_unavailable")  # admission needs Redis
                client = openai_client(base_url(a), key)
                with pytest.raises(Exception) as refused:
                    await in_thread(lambda: client.realtime.client_secrets.create())
                assert getattr(refused.value, "status_code", None) == 503
                assert getattr(refused.value, "code", None) == "state_unavailable"
            await redis.restart()

            # Redis came back empty (nothing persisted): A writes the live secrets it minted
            # again, as it re-asserts its leases, so B accepts them (those minted during the
            # outage too).
            async def b_accepts() -> bool:
                return await handshake(b, secret) == (None, None)

            await eventually(b_accepts, deadline=10)
            if local is not None:
                assert await stored(redis, local) is not None
                assert await handshake(b, local) == (None, None)
            assert await handshake(b, await mint(a, key)) == (None, None)


async def test_serve_workers_accepts_a_secret_on_whichever_worker_the_connection_lands(tmp_path: Path) -> None:
    key = make_key(tmp_path, "voice-app")
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(config_text(mock.url, redis.url, tmp_path, per_ip=100))
        async with start_instance(config, "--workers", "2") as gw:
            served: set[str] = set()
            opened = 0
            with trio.fail_after(60):
                secrets = [await mint(gw, key) for _ in range(3)]  # minted by whichever worker answered
                # Sessions until both workers have served several (the kernel spreads connections):
                # every one opens, so each worker accepts secrets the other minted.
                while len(served) < 2 or opened < 12:
                    secret = secrets[opened % len(secrets)]
                    async with open_websocket_url(gw.ws_url(), subprotocols=browser(secret)) as ws:
                        await ws.send_message("ping")
                        assert await ws.get_message() == "ping"
                        served |= worker_pids(await redis.command("ZRANGE", "kt:slots:ip:127.0.0.1", 0, -1))
                    opened += 1
            assert len(served) == 2
