"""The admin API on gateway processes that share one real Redis (`state.backend: redis`, as
`serve --workers N` and several instances run): console logins are known everywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.cluster import cluster_config, open_cluster
from tests.helpers import make_key
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
