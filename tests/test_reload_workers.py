"""Config reload under `serve --workers 2`: SIGHUP to the supervisor, and `POST /admin/reload` to
whichever worker takes it, reach every worker."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
import trio

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.cluster import cluster_config, start_instance
from tests.helpers import bearer, make_key
from tests.redis_server import open_redis
from tests.reload_helpers import PHONE, event_stream, new_session_sends, system_event

pytestmark = pytest.mark.trio


async def test_sighup_to_the_supervisor_and_admin_reload_reach_both_workers(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour()) as mock:
        config = tmp_path / "gw.yaml"
        admin = make_key(tmp_path, "ops", scopes=["admin"])
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
                    assert "[REDACTED:PHONE]" in await new_session_sends(gw.ws_url(), mock, i, f"call {PHONE}")
                # POST /admin/reload reaches one worker, which has the supervisor reload both.
                config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=100))
                async with event_stream(gw.port) as events, httpx.AsyncClient() as http:
                    answer = await http.post(f"http://127.0.0.1:{gw.port}/admin/reload", headers=dict(bearer(admin)))
                    assert answer.status_code == 200 and answer.json()["status"] == "reloaded"
                    first = await system_event(events, "config_reloaded")
                    second = await system_event(events, "config_reloaded")
                    assert first["pid"] != second["pid"]
                for i in range(6, 10):
                    assert PHONE in await new_session_sends(gw.ws_url(), mock, i, f"call {PHONE}")
                gw.proc.send_signal(signal.SIGTERM)
                assert await gw.proc.wait() == 0
