"""What a session opening and closing costs in Redis, and that the guarantees survive the savings.

A session opening takes its slots and its first target's breaker permit in one script; its end
is carried by the next opening (or sent within a few ms); its events go to Redis only while
another instance has a `/ws/events` subscriber. Real gateway processes and a real Redis.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from kt_trio.state.fanout import EVENTS_CHANNEL, SEP
from tests.cluster import cluster_config, eventually, open_cluster
from tests.redis_server import open_redis
from tests.test_state_redis import status_of

pytestmark = pytest.mark.trio


async def test_events_reach_redis_only_while_another_instance_listens(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        # A raw subscriber sees whatever reaches the channel; it is no instance, so nobody
        # publishes for it.
        async with open_cluster(config) as (a, b), redis.subscribe(EVENTS_CHANNEL) as raw:
            async with open_websocket_url(a.ws_url()) as ws:  # nobody listens anywhere
                await ws.send_message(json.dumps({"type": "x"}))
                await ws.get_message()
            async with open_websocket_url(b.ws_url("/ws/events?types=audit")) as events:
                async with open_websocket_url(a.ws_url()) as ws:
                    await ws.send_message(json.dumps({"type": "x"}))
                    await ws.get_message()
                seen: list[dict[str, str]] = []
                with trio.fail_after(5):
                    while not seen or seen[-1]["event"] != "session_end":
                        seen.append(json.loads(await events.get_message())["payload"])
                listened = seen[-1]["session_id"]
            # Redis delivers in publish order: had the first session's events been published,
            # they would come before the second's.
            sessions: list[str] = []
            ended = ""
            with trio.fail_after(5):
                while ended != listened:
                    _, frame = await raw.message()
                    _, event_type, session_id, _, text = frame.split(SEP, 4)
                    if event_type == "audit":
                        sessions.append(session_id)
                        if json.loads(text)["payload"]["event"] == "session_end":
                            ended = session_id
            assert set(sessions) == {listened}, sessions


async def test_a_closed_sessions_slot_is_free_again_soon_on_every_instance_and_the_limit_holds(
    tmp_path: Path,
) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        # A long lease TTL: a slot that comes back quickly was released, not left to expire.
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=1, lease_ttl_secs=60))
        async with open_cluster(config) as (a, b):
            for _ in range(5):
                for instance in (a, b, a):

                    async def admitted(url: str = instance.ws_url()) -> bool:
                        return (await status_of(url))[0] is None

                    await eventually(admitted, 3)
            async with open_websocket_url(a.ws_url()):
                assert (await status_of(b.ws_url()))[0] == 429
                assert (await status_of(a.ws_url()))[0] == 429
            assert await redis.command("ZCARD", "kt:slots:ip:127.0.0.1") in (0, 1)
