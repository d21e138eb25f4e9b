"""Config reload under `serve --workers 2`: SIGHUP to the supervisor reaches every worker."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.cluster import cluster_config, start_instance
from tests.redis_server import open_redis
from tests.reload_helpers import PHONE, event_stream, next_of, sent_upstream, system_event

pytestmark = pytest.mark.trio


async def test_sighup_to_the_supervisor_reloads_both_workers(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour()) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=100))
        async with start_instance(config, "--workers", "2") as gw:
            with trio.fail_after(60):
                async with event_stream(gw.port) as events:
                    config.write_text(
                        cluster_config(mock.url, redis.url, tmp_path, per_ip=100).replace(
                            "chain: []", "chain: [pii-detector]"
                        )
                    )
                    gw.proc.send_signal(signal.SIGHUP)
                    # The stream is shared through Redis: one subscriber sees both workers' events.
                    first = await system_event(events, "config_reloaded")
                    second = await system_event(events, "config_reloaded")
                    assert first["trigger"] == second["trigger"] == "SIGHUP"
                    assert first["pid"] != second["pid"]
                # Whichever worker takes a new session, it runs the new chain.
                for i in range(6):
                    async with open_websocket_url(gw.ws_url()) as ws:
                        await next_of(ws, "session.created")
                        assert "[REDACTED:PHONE]" in await sent_upstream(ws, mock, i, f"call {PHONE}")
                gw.proc.send_signal(signal.SIGTERM)
                assert await gw.proc.wait() == 0
