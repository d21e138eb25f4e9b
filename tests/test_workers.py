"""`serve --workers N`: one port, N processes, one supervisor; shared limits through Redis."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.cluster import cluster_config, start_instance
from tests.helpers import http_get, samples
from tests.postgres_server import PostgresServer
from tests.redis_server import open_redis

pytestmark = pytest.mark.trio

LIMIT = 12


async def children_of(pid: int) -> list[bytes]:
    """The pids of `pid`'s child processes (a supervisor's workers), as pgrep prints them."""
    return (await trio.run_process(["pgrep", "-P", str(pid)], capture_stdout=True, check=False)).stdout.split()


def worker_pids(members: list[str]) -> set[str]:
    """Lease members are `<host>:<pid>:<random>:<uuid>`: the pid of the worker holding each."""
    return {m.split(":")[1] for m in members}


async def test_two_workers_share_the_port_and_the_per_ip_limit_and_drain_on_sigterm(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=LIMIT))
        async with start_instance(config, "--workers", "2") as gw:
            closes: list[int] = []
            async with trio.open_nursery() as nursery:

                async def hold(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    async with open_websocket_url(gw.ws_url()) as ws:
                        task_status.started()
                        try:
                            while True:
                                await ws.get_message()
                        except ConnectionClosed as exc:
                            closes.append(exc.reason.code)

                with trio.fail_after(30):
                    for _ in range(LIMIT):
                        await nursery.start(hold)
                    members = await redis.command("ZRANGE", "kt:slots:ip:127.0.0.1", 0, -1)
                    # Sessions landed on both workers (the kernel spreads connections over them).
                    assert len(members) == LIMIT and len(worker_pids(members)) == 2
                    # The limit holds across them: the next session is refused whichever worker takes it.
                    for _ in range(4):
                        with pytest.raises(Exception) as refused:
                            async with open_websocket_url(gw.ws_url()):
                                pass
                        assert getattr(refused.value, "status_code", None) == 429
                    # /metrics sums every worker, whichever one answers the scrape.
                    for _ in range(3):
                        status, body = await http_get(gw.port, "/metrics")
                        assert status == 200
                        assert samples(body.decode())[("kt_sessions_active", ())] == LIMIT
                    gw.proc.send_signal(signal.SIGTERM)
                    assert await gw.proc.wait() == 0
            assert closes == [1001] * LIMIT


async def test_a_worker_that_dies_is_restarted(tmp_path: Path) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=100))
        async with start_instance(config, "--workers", "2") as gw:
            pids = await children_of(gw.proc.pid)
            assert len(pids) == 2
            subprocess.run(["kill", "-9", pids[0].decode()], check=True)
            with trio.fail_after(20):
                while True:
                    now = await children_of(gw.proc.pid)
                    if len(now) == 2 and pids[0] not in now:
                        break
                    await trio.sleep(0.1)
            # The new worker serves: some session lands on it (the kernel spreads connections).
            new = next(p for p in now if p not in pids).decode()
            with trio.fail_after(20):
                while True:
                    async with open_websocket_url(gw.ws_url()):
                        members = await redis.command("ZRANGE", "kt:slots:ip:127.0.0.1", 0, -1)
                    if new in worker_pids(members):
                        break
            gw.proc.send_signal(signal.SIGTERM)
            assert await gw.proc.wait() == 0


async def test_workers_drain_and_exit_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """kill -9 of the supervisor (or an OOM kill) must not leave its workers serving the port."""
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path, per_ip=100))
        async with start_instance(config, "--workers", "2") as gw:
            pids = [int(p) for p in await children_of(gw.proc.pid)]
            assert len(pids) == 2
            async with open_websocket_url(gw.ws_url()) as ws:
                gw.proc.send_signal(signal.SIGKILL)
                with trio.fail_after(20):
                    with pytest.raises(ConnectionClosed) as closed:
                        while True:
                            await ws.get_message()
                assert closed.value.reason.code == 1001  # drained, not dropped

            def alive(pid: int) -> bool:
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                except FileNotFoundError:
                    return False
                return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited

            with trio.fail_after(20):
                while any(alive(pid) for pid in pids):
                    await trio.sleep(0.1)


async def test_embedded_backend_with_several_workers_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(
        "providers:\n  targets:\n    - id: m\n      provider: openai\n      model: gpt-realtime\n"
        "      base_url: ws://127.0.0.1:9/v1/realtime\n"
    )
    done = await trio.run_process(
        [sys.executable, "-m", "kt_trio", "serve", "--config", str(config), "--workers", "2"],
        capture_stderr=True,
        check=False,
    )
    assert done.returncode == 2
    assert b"state.backend: redis" in done.stderr


async def test_workers_on_postgres_each_write_their_own_audit_chain(
    pg_dsn: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        store = f"store:\n  backend: postgres\n  postgres_dsn: '{pg_dsn}'\n  instance_id: gw\n"
        text = cluster_config(mock.url, redis.url, tmp_path, per_ip=100, extra=store)
        config.write_text(text.replace("policies:\n  chain: []", "policies:\n  chain: [audit-logger]"))
        async with start_instance(config, "--workers", "2") as gw:
            # Sessions until both workers have served one (the kernel spreads connections).
            served: set[str] = set()
            with trio.fail_after(30):
                while len(served) < 2:
                    async with open_websocket_url(gw.ws_url()) as ws:
                        await ws.send_message("hello")
                        assert await ws.get_message() == "hello"
                        served |= worker_pids(await redis.command("ZRANGE", "kt:slots:ip:127.0.0.1", 0, -1))
            gw.proc.send_signal(signal.SIGTERM)
            assert await gw.proc.wait() == 0
        verify = await trio.run_process(
            [sys.executable, "-m", "kt_trio", "audit", "verify", "--config", str(config)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        out = verify.stdout.decode()
        assert verify.returncode == 0, out + verify.stderr.decode()
        assert "in 2 chains" in out
        assert set(re.findall(r"chain (gw/w[01]) OK", out)) == {"gw/w0", "gw/w1"}, out
