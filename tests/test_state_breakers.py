"""The cluster's breakers in Redis: two instances' breakers for one target share one state."""

from __future__ import annotations

import pytest
import trio

from kt_trio.governance.breaker import CircuitBreaker
from kt_trio.state.breakers import SharedBreakers
from kt_trio.state.link import RedisLink
from tests.redis_server import open_redis

pytestmark = pytest.mark.trio


async def test_failures_from_two_instances_open_it_and_only_one_gets_the_half_open_trial() -> None:
    async with open_redis() as redis, trio.open_nursery() as nursery:
        link = RedisLink(redis.url)
        await nursery.start(link.run)
        # Two instances: each its own local breaker (the mirror), one shared state in Redis.
        shared = SharedBreakers(link, "pack")
        a = CircuitBreaker("t", failure_threshold=4, recovery_timeout_secs=0.3)
        b = CircuitBreaker("t", failure_threshold=4, recovery_timeout_secs=0.3)
        now = trio.current_time()
        for breaker in (a, b, a, b):  # 2 + 2 failures: neither instance saw 4 on its own
            permit = await shared.acquire(breaker, now)
            assert permit is not None
            await shared.record_failure(breaker, permit, now, "refused")
        assert await redis.command("HGET", "kt:breaker:pack:t", "state") == "open"
        assert await shared.acquire(b, now) is None and b.state == "open"  # B learns it on asking
        # After the recovery timeout (Redis's clock), the first instance to ask gets the trial.
        with trio.fail_after(5):
            while (first := await shared.acquire(a, trio.current_time())) is None:
                await trio.sleep(0.02)
        later = trio.current_time()
        second = await shared.acquire(b, later)
        assert first is not None and first.trial
        assert second is None  # one trial for the whole cluster
        await shared.record_success(a, first, later)
        assert await redis.command("HGET", "kt:breaker:pack:t", "state") == "closed"
        assert (await shared.acquire(b, later)) is not None and b.state == "closed"
        nursery.cancel_scope.cancel()
