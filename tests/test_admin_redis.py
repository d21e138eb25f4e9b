"""The admin API on gateway processes that share one real Redis (`state.backend: redis`, as
`serve --workers N` and several instances run): console logins are known everywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.cluster import cluster_config, eventually, open_cluster, start_instance
from tests.helpers import bearer, closed_with, make_key
from tests.redis_server import open_redis


async def test_a_console_login_made_on_one_instance_works_on_the_other(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        async with open_cluster(config) as (a, b), httpx.AsyncClient() as http:
            with trio.fail_after(30):
                login = await http.post(f"http://127.0.0.1:{a.port}/console/login", json={"key": admin})
                assert login.status_code == 200
                token = login.headers["set-cookie"].split(";")[0].split("=", 1)[1]
                http.cookies.clear()
                # Redis holds the login under the token's hash, never the token or the key.
                stored = await redis.command("KEYS", "kt:console:*")
                assert len(stored) == 1 and token not in stored[0]
                assert await redis.command("GET", stored[0]) == "ops"
                assert 0 < await redis.command("TTL", stored[0]) <= 12 * 3600
                cookie = {"Cookie": f"kt_console={token}"}
                on_b = await http.get(f"http://127.0.0.1:{b.port}/admin/sessions", headers=cookie)
                assert on_b.status_code == 200 and on_b.json()["object"] == "list"
                own_b = f"http://127.0.0.1:{b.port}"
                out = await http.post(f"{own_b}/console/logout", headers={**cookie, "Origin": own_b})
                assert out.json() == {"logged_out": True}
                on_a = await http.get(f"http://127.0.0.1:{a.port}/admin/sessions", headers=cookie)
                assert on_a.status_code == 401
                assert await redis.command("KEYS", "kt:console:*") == []


async def test_with_workers_every_session_is_listed_and_closable_whichever_worker_answers(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    async with open_redis() as redis, open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        async with (
            start_instance(config, "--workers", "2") as gw,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw.port}", headers=dict(bearer(admin))) as http,
            trio.open_nursery() as nursery,
        ):
            closes: dict[int, tuple[int, str]] = {}

            async def hold(i: int, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with open_websocket_url(gw.ws_url()) as ws:
                    await ws.send_message(f"s{i}")
                    await ws.get_message()
                    task_status.started()
                    closes[i] = await closed_with(ws)

            async def listed() -> list[dict[str, object]]:
                # A new connection each time: the kernel may hand it to either worker.
                async with httpx.AsyncClient(headers=dict(bearer(admin))) as fresh:
                    resp = await fresh.get(f"http://127.0.0.1:{gw.port}/admin/sessions")
                assert resp.status_code == 200
                return resp.json()["data"]  # type: ignore[no-any-return]

            with trio.fail_after(60):
                opened = 0
                # Open sessions until both workers hold some (the kernel spreads connections).
                while opened < 40:
                    await nursery.start(hold, opened)
                    opened += 1
                    if opened >= 2 and len({r["worker"] for r in await listed()}) == 2:
                        break
                for _ in range(4):  # whichever worker answers, it lists every session
                    rows = await listed()
                    assert len(rows) == opened and len({r["worker"] for r in rows}) == 2
                for row in rows:
                    async with httpx.AsyncClient(headers=dict(bearer(admin))) as fresh:
                        resp = await fresh.delete(
                            f"http://127.0.0.1:{gw.port}/admin/sessions/{row['id']}",
                            params={"code": "4100", "reason": "drain"},
                        )
                    assert resp.status_code == 200, resp.text

                async def all_closed() -> bool:
                    return len(closes) == opened

                await eventually(all_closed, deadline=10)
                assert set(closes.values()) == {(4100, "drain")}
                assert await listed() == []
                missing = await http.delete("/admin/sessions/nope")
                assert missing.status_code == 404
