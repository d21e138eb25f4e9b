"""Daily USD budgets with `state.backend: redis`: two gateway processes with separate key stores
share one real Redis, so only Redis can tell one what the other spent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from kt_trio.keys.store import utc_day
from kt_trio.mocks.realtime import open_mock_upstream
from tests.cluster import cluster_config, eventually, open_cluster, start_instance
from tests.helpers import bearer, make_key
from tests.redis_server import open_redis
from tests.test_usd_budgets import BUDGET, FIRST, SECOND, budget_events, create


async def test_key_and_team_usd_budgets_spent_on_one_instance_refuse_on_the_other(tmp_path: Path) -> None:
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    alpha = make_key(dir_a, "alpha", team="blue", daily_usd=BUDGET)
    beta = make_key(dir_a, "beta", team="blue")
    (dir_b / "keys.db").write_bytes((dir_a / "keys.db").read_bytes())
    teams = f"teams:\n  blue:\n    daily_usd: {BUDGET}\n"
    async with open_redis() as redis, open_mock_upstream() as mock:
        (tmp_path / "a.yaml").write_text(cluster_config(mock.url, redis.url, dir_a, extra=teams))
        (tmp_path / "b.yaml").write_text(cluster_config(mock.url, redis.url, dir_b, extra=teams))
        async with open_cluster(tmp_path / "a.yaml", 1) as (a,), open_cluster(tmp_path / "b.yaml", 1) as (b,):
            with trio.fail_after(30):
                async with open_websocket_url(b.ws_url("/ws/events?types=budget")) as sub:
                    async with open_websocket_url(a.ws_url(), extra_headers=bearer(alpha)) as ws:
                        await ws.get_message()
                        assert (await create(ws))["type"] == "response.done"
                        assert (await create(ws))["type"] == "response.done"

                    async def spent() -> bool:
                        day = utc_day(time.time())
                        totals = [await redis.command("GET", f"kt:usd:{s}:{day}") for s in ("key:alpha", "team:blue")]
                        return all(int(t or 0) >= BUDGET * 1e9 for t in totals)

                    await eventually(spent, deadline=5)
                    for key, whose in ((alpha, "this key"), (beta, "team 'blue'")):
                        async with open_websocket_url(b.ws_url(), extra_headers=bearer(key)) as ws:
                            await ws.get_message()
                            refused = await create(ws)
                            assert refused["error"]["code"] == "budget_exceeded"
                            assert f"Daily USD budget of {whose}" in refused["error"]["message"]
                    # Instance A's alerts, seen by a subscriber on B: each threshold of each budget.
                    alerts = await budget_events(sub, 6)
    by_budget = {budget: [a["threshold"] for a in alerts if a["budget"] == budget] for budget in ("key", "team")}
    assert by_budget == {"key": [0.5, 0.8, 1.0], "team": [0.5, 0.8, 1.0]}
    final = [a for a in alerts if a["threshold"] == 1.0]
    assert all(abs(a["used_usd"] - (FIRST + SECOND)) < 1e-8 for a in final)
    assert {a["team"] for a in alerts} == {"blue"}
    assert json.dumps(alerts).count("alpha") == 3  # the key's name on its own budget's alerts only


async def test_a_usd_budget_holds_across_workers(tmp_path: Path) -> None:
    key = make_key(tmp_path, "metered", daily_usd=BUDGET, max_sessions=100)  # leases name each worker
    refusals: list[str] = []
    async with open_redis() as redis, open_mock_upstream() as mock:
        config = tmp_path / "gw.yaml"
        config.write_text(cluster_config(mock.url, redis.url, tmp_path))
        with trio.fail_after(60):
            async with start_instance(config, "--workers", "2") as gw:
                async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
                    await ws.get_message()
                    assert (await create(ws))["type"] == "response.done"
                    assert (await create(ws))["type"] == "response.done"

                async def spent() -> bool:
                    return int(await redis.command("GET", f"kt:usd:key:metered:{utc_day(time.time())}") or 0) >= 6e6

                await eventually(spent, deadline=5)
                # New sessions on both workers (the kernel spreads them), each refused new work.
                go = trio.Event()

                async def hold(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
                        await ws.get_message()
                        task_status.started()
                        await go.wait()
                        refusals.append((await create(ws))["error"]["code"])

                async with trio.open_nursery() as nursery:
                    for _ in range(12):
                        await nursery.start(hold)
                    members = await redis.command("ZRANGE", "kt:slots:key:metered", 0, -1)
                    assert len({m.split(":")[1] for m in members}) == 2
                    go.set()
    assert refusals == ["budget_exceeded"] * 12
