"""Concurrent-session slots in Redis: per-IP and per-key, as leases with a TTL and a heartbeat.

One ZSET per IP (`kt:slots:ip:<ip>`) and per gateway key (`kt:slots:key:<name>`): member = lease
id (`<instance>:<uuid>`), score = expiry in Redis's own milliseconds (`TIME`, so the gateways'
clocks never matter). Every acquire first drops the expired members, so the slots of an instance
that died (kill -9, a lost machine) free themselves within `lease_ttl_secs`, with no reaper.
A live instance renews every lease it holds in one script call per `lease_ttl_secs / 3`.

Acquiring the IP slot and the key slot is one script, so a session opening costs one round
trip and a refusal takes nothing. The renewal re-adds a lease Redis lost (Redis restarted
without persistence): open sessions are counted again as soon as Redis is back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from types import TracebackType
from typing import Any

import trio

from kt_trio.state.base import StateUnavailable
from kt_trio.state.link import RedisLink

ACQUIRE = """
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 2]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[2])
  redis.call('PEXPIRE', key, ttl)
end
return 0
"""

# KEYS[i] holds member ARGV[i + 1]; ZADD without XX re-creates what a restarted Redis lost.
RENEW = """
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""

RELEASE = """
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0
"""

# Keys per renewal call: a gateway with thousands of sessions renews in a few bounded calls.
RENEW_CHUNK = 500


def ip_slots(ip: str) -> str:
    return f"kt:slots:ip:{ip}"


def key_slots(name: str) -> str:
    return f"kt:slots:key:{name}"


class Lease:
    """The Redis slots one session holds; release it on leaving (`async with lease:`)."""

    __slots__ = ("_leases", "keys", "member")

    def __init__(self, leases: RedisLeases | None, member: str, keys: tuple[str, ...]) -> None:
        self._leases = leases
        self.member = member
        self.keys = keys

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        leases, self._leases = self._leases, None
        if leases is not None:
            await leases.release(self)


NO_LEASE = Lease(None, "", ())


class RedisLeases:
    def __init__(self, link: RedisLink, instance: str, ttl_secs: float) -> None:
        self.link = link
        self.instance = instance
        self.ttl_ms = max(1, int(ttl_secs * 1000))
        self.ttl_secs = ttl_secs
        self._acquire = link.client.register_script(ACQUIRE)
        self._renew = link.client.register_script(RENEW)
        self._release = link.client.register_script(RELEASE)
        # Leases held by this instance's live sessions: bounded by its open sessions.
        self.held: dict[str, tuple[str, ...]] = {}
        self._renew_now = trio.Event()
        link.when_up(lambda: self._renew_now.set())

    async def acquire(self, wanted: Sequence[tuple[str, int]]) -> Lease | int:
        """A lease on every `(zset, limit)`, or the 1-based index of the first one that is full.
        Raises `StateUnavailable`."""
        if not wanted:
            return NO_LEASE
        member = f"{self.instance}:{uuid.uuid4().hex}"
        keys = tuple(k for k, _ in wanted)
        args: list[Any] = [self.ttl_ms, member, *(limit for _, limit in wanted)]
        refused: Any = await self.link.call(lambda: self._acquire(keys, args))
        if refused:
            return int(refused)
        self.held[member] = keys
        return Lease(self, member, keys)

    async def release(self, lease: Lease) -> None:
        self.held.pop(lease.member, None)
        # Shielded and short: the session is over whatever happens; a release Redis never got is
        # undone by the lease's TTL.
        with trio.CancelScope(shield=True), trio.move_on_after(self.link.op_timeout * 2):
            try:
                await self.link.call(lambda: self._release(lease.keys, [lease.member]))
            except StateUnavailable:
                pass

    async def heartbeat(self) -> None:
        """Renews every held lease each third of the TTL, and at once when Redis comes back."""
        while True:
            with trio.move_on_after(self.ttl_secs / 3):
                await self._renew_now.wait()
            self._renew_now = trio.Event()
            await self.renew_all()

    async def renew_all(self) -> None:
        pairs = [(key, member) for member, keys in list(self.held.items()) for key in keys]
        for start in range(0, len(pairs), RENEW_CHUNK):
            chunk = pairs[start : start + RENEW_CHUNK]
            keys = [k for k, _ in chunk]
            args: list[Any] = [self.ttl_ms, *(m for _, m in chunk)]
            try:
                await self.link.call(partial(self._renew, keys, args))
            except StateUnavailable:
                return
