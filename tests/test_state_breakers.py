"""The cluster's breakers in Redis: two instances' breakers for one target share one state."""

from __future__ import annotations

import pytest
import trio

from kt_trio.governance.breaker import CircuitBreaker
from kt_trio.state.breakers import SharedBreakers
from kt_trio.state.leases import RedisLeases
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


async def test_a_permit_taken_with_the_session_slots_is_the_one_half_open_trial() -> None:
    async with open_redis() as redis, trio.open_nursery() as nursery:
        link = RedisLink(redis.url)
        await nursery.start(link.run)
        shared = SharedBreakers(link, "pack")
        a = CircuitBreaker("t", failure_threshold=1, recovery_timeout_secs=0.3)
        b = CircuitBreaker("t", failure_threshold=1, recovery_timeout_secs=0.3)
        permit = await shared.acquire(a, trio.current_time())
        assert permit is not None
        await shared.record_failure(a, permit, trio.current_time(), "refused")
        # Two instances open sessions at once once the recovery time is over: each opening's
        # script takes its slot and asks the breaker; exactly one gets the trial.
        leases_a, leases_b = RedisLeases(link, "a", 30), RedisLeases(link, "b", 30)
        wanted = [("kt:slots:ip:10.0.0.1", 10_000)]
        with trio.fail_after(5):
            while True:
                lease_a, answer_a = await leases_a.acquire(wanted, (shared.key("t"), shared.acquire_args(a)))
                if answer_a is not None and int(answer_a[0]):
                    break
                await trio.sleep(0.02)
        lease_b, answer_b = await leases_b.acquire(wanted, (shared.key("t"), shared.acquire_args(b)))
        assert not isinstance(lease_a, int) and not isinstance(lease_b, int)  # slots taken either way
        assert answer_a is not None and answer_b is not None
        shared.prefetched(a, answer_a)
        trial = await shared.acquire(a, trio.current_time())  # the dial takes the fetched answer
        shared.prefetched(b, answer_b)
        assert trial is not None and trial.trial
        assert await shared.acquire(b, trio.current_time()) is None and b.state == "half_open"
        nursery.cancel_scope.cancel()
