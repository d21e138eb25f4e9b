"""`state.backend: redis`: two gateway processes on different ports share one real Redis."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection, open_websocket_url

from kt_trio.keys.store import utc_day
from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.cluster import cluster_config, eventually, open_cluster, start_instance
from tests.helpers import bearer, http_get, make_key, samples
from tests.redis_server import open_redis

pytestmark = pytest.mark.trio


async def status_of(url: str, headers: list[tuple[str, str]] | None = None) -> tuple[int | None, dict[str, str]]:
    """(status, error body) of a refused handshake; (None, {}) when it was accepted."""
    try:
        async with open_websocket_url(url, extra_headers=headers or []):
            return None, {}
    except ConnectionRejected as exc:
        body = json.loads(exc.body or b"{}") if exc.body else {}
        return exc.status_code, body.get("error", {})


async def closed_as_revoked(ws: WebSocketConnection) -> None:
    """The session ends with 1008 "key revoked" within 2 s."""
    with trio.fail_after(2), pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    assert (info.value.reason.code, info.value.reason.reason) == (1008, "key revoked")


async def test_per_ip_limit_holds_across_instances_and_a_killed_instance_frees_its_slots(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=3, lease_ttl_secs=2))
        async with open_cluster(config) as (a, b), trio.open_nursery() as held:
            opened = 0

            async def hold(url: str, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with open_websocket_url(url):
                    task_status.started()
                    await trio.sleep_forever()

            with trio.fail_after(20):
                await held.start(hold, a.ws_url())
                await held.start(hold, a.ws_url())
                await held.start(hold, b.ws_url())
                opened = 3
                assert (await status_of(a.ws_url()))[0] == 429
                status, error = await status_of(b.ws_url())
                assert status == 429 and error["code"] == "too_many_connections"
            assert opened == 3
            assert await redis.command("ZCARD", "kt:slots:ip:127.0.0.1") == 3
            # A dies holding two slots: they expire with their leases (TTL 2 s), B admits again.
            await a.kill()
            freed_at = trio.current_time()

            async def admitted() -> bool:
                return (await status_of(b.ws_url()))[0] is None

            await eventually(admitted, deadline=2 + 3)
            assert trio.current_time() - freed_at < 2 + 3
            held.cancel_scope.cancel()


async def test_breaker_opened_through_one_instance_refuses_on_the_other_without_dialling(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(reject_status=503)) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        async with open_cluster(config) as (a, b):
            for _ in range(5):
                assert (await status_of(a.ws_url()))[0] == 502
            assert mock.handshake_count == 5
            status, error = await status_of(b.ws_url())
            assert status == 503 and error["code"] == "circuit_open"
            assert mock.handshake_count == 5  # B never dialled
            assert await redis.command("HGET", "kt:breaker:kt_trio:mock", "state") == "open"


async def create(ws: WebSocketConnection) -> dict[str, object]:
    await ws.send_message(json.dumps({"type": "response.create"}))
    while True:
        event = json.loads(await ws.get_message())
        if event["type"] in ("response.done", "error"):
            return event  # type: ignore[no-any-return]


async def test_daily_budget_spent_through_one_instance_refuses_on_the_other(tmp_path: Path) -> None:
    # Separate key stores (B has a copy of the key): only Redis can tell B what A spent.
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    key = make_key(dir_a, "metered", daily_tokens=100)  # one mock response uses 168 tokens
    (dir_b / "keys.db").write_bytes((dir_a / "keys.db").read_bytes())
    async with open_redis() as redis, open_mock_upstream() as mock:
        (tmp_path / "a.yaml").write_text(cluster_config(mock.url, redis.url, dir_a))
        (tmp_path / "b.yaml").write_text(cluster_config(mock.url, redis.url, dir_b))
        async with open_cluster(tmp_path / "a.yaml", 1) as (a,), open_cluster(tmp_path / "b.yaml", 1) as (b,):
            with trio.fail_after(20):
                async with open_websocket_url(a.ws_url(), extra_headers=bearer(key)) as ws:
                    await ws.get_message()
                    assert (await create(ws))["type"] == "response.done"

                async def spent() -> bool:
                    return int(await redis.command("GET", f"kt:tokens:metered:{utc_day(time.time())}") or 0) >= 100

                await eventually(spent, deadline=5)
                async with open_websocket_url(b.ws_url(), extra_headers=bearer(key)) as ws:
                    await ws.get_message()
                    refused = await create(ws)
                    assert refused["error"]["type"] == "budget_exceeded"  # type: ignore[index]


async def test_revoke_terminate_on_one_instance_closes_a_session_held_by_the_other(tmp_path: Path) -> None:
    key = make_key(tmp_path, "leaked")
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        async with open_cluster(config) as (_a, b):
            async with open_websocket_url(b.ws_url(), extra_headers=bearer(key)) as ws:
                await ws.send_message(json.dumps({"type": "x"}))
                await ws.get_message()
                # `keys revoke --terminate` as an operator runs it (on A's machine: the shared store).
                revoked = await trio.run_process(
                    [
                        sys.executable,
                        "-m",
                        "kt_trio",
                        "keys",
                        "revoke",
                        "leaked",
                        "--terminate",
                        "--state-dir",
                        str(tmp_path),
                    ],
                    capture_stdout=True,
                )
                assert b"revoked" in revoked.stdout
                await closed_as_revoked(ws)
            assert "leaked" in await redis.command("SMEMBERS", "kt:revoked")


async def test_event_subscriber_on_one_instance_sees_sessions_of_the_other(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        async with open_cluster(config) as (a, b):
            async with open_websocket_url(b.ws_url("/ws/events?types=audit")) as events:
                async with open_websocket_url(a.ws_url()) as ws:
                    await ws.send_message(json.dumps({"type": "x"}))
                    await ws.get_message()
                seen: list[str] = []
                with trio.fail_after(5):
                    while "session_end" not in seen:
                        seen.append(json.loads(await events.get_message())["payload"]["event"])
                assert seen.index("session_start") < seen.index("session_end")


@pytest.mark.parametrize("on_unavailable", ["fail_closed", "fail_open"])
async def test_redis_killed_mid_run_keeps_open_sessions_and_recovers(tmp_path: Path, on_unavailable: str) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=10, on_unavailable=on_unavailable))
        async with open_cluster(config, 1) as (a,), open_websocket_url(a.ws_url("/ws/events?types=system")) as events:
            async with open_websocket_url(a.ws_url()) as ws:
                await redis.kill()

                async def refused_for_state() -> bool:
                    status, error = await status_of(a.ws_url())
                    return status == 503 and error.get("code") == "state_unavailable"

                if on_unavailable == "fail_closed":
                    await eventually(refused_for_state, deadline=5)
                else:
                    assert (await status_of(a.ws_url()))[0] is None  # admitted on local limits
                # The open session goes on.
                await ws.send_message(json.dumps({"type": "x", "event_id": "still"}))
                assert json.loads(await ws.get_message())["event_id"] == "still"
                await redis.restart()

                async def admitted() -> bool:
                    return (await status_of(a.ws_url()))[0] is None

                await eventually(admitted, deadline=5)

                # Its lease is counted again once Redis is back (re-asserted by the heartbeat).
                async def counted() -> bool:
                    return int(await redis.command("ZCARD", "kt:slots:ip:127.0.0.1")) >= 1

                await eventually(counted, deadline=5)
                await ws.send_message(json.dumps({"type": "x", "event_id": "after"}))
                assert json.loads(await ws.get_message())["event_id"] == "after"
            # Each transition is a `system` event and moves the gauge.
            kinds: list[str] = []
            with trio.fail_after(5):
                while "state_available" not in kinds:
                    kinds.append(json.loads(await events.get_message())["payload"]["event"])
            assert kinds[kinds.index("state_unavailable") :].count("state_available") == 1
            status, body = await http_get(a.port, "/metrics")
            assert status == 200
            assert samples(body.decode())[("kt_state_backend_up", ())] == 1
            assert samples(body.decode())[("kt_state_backend_transitions_total", (("to", "unavailable"),))] == 1


async def test_cli_revoke_terminate_reaches_an_instance_through_redis_alone(tmp_path: Path) -> None:
    """`keys revoke --terminate --config` from an operator's shell: B's key store never hears of
    it (its own state dir), so only the Redis broadcast can end B's session."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    key = make_key(a_dir, "leaked")
    shutil.copy(a_dir / "keys.db", b_dir / "keys.db")  # the same key on both
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        a_config, b_config = tmp_path / "a.yaml", tmp_path / "b.yaml"
        a_config.write_text(cluster_config(mock.url, redis.url, a_dir))
        b_config.write_text(cluster_config(mock.url, redis.url, b_dir))
        async with start_instance(a_config), start_instance(b_config) as b:
            async with open_websocket_url(b.ws_url(), extra_headers=bearer(key)) as ws:
                await ws.send_message(json.dumps({"type": "x"}))
                await ws.get_message()
                revoke = ["keys", "revoke", "leaked", "--terminate", "--config", str(a_config)]
                revoked = await trio.run_process([sys.executable, "-m", "kt_trio", *revoke], capture_stdout=True)
                assert b"revoked" in revoked.stdout
                await closed_as_revoked(ws)
            assert "leaked" in await redis.command("SMEMBERS", "kt:revoked")
