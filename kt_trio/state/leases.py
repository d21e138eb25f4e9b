"""Concurrent-session slots in Redis: per-IP and per-key, as leases with a TTL and a heartbeat.

One ZSET per IP (`kt:slots:ip:<ip>`) and per gateway key (`kt:slots:key:<name>`): member = lease
id (`<instance>:<uuid>`), score = expiry in Redis's own milliseconds (`TIME`, so the gateways'
clocks never matter). Every acquire first drops the expired members, so the slots of an instance
that died (kill -9, a lost machine) free themselves within `lease_ttl_secs`, with no reaper.
A live instance renews every lease it holds in one script call per `lease_ttl_secs / 3`.

Acquiring the IP slot, the key slot and the permit of the session's first target's circuit
breaker is one script (`OPEN`), so a session opening costs one round trip (a refused slot takes
no breaker permit). A session's end costs none of its own: its lease is released by this
instance's next opening, in the same script and before it counts, or, when no opening comes
within `RELEASE_DELAY_SECS`, by one call for every lease given back meanwhile. The renewal
re-adds a lease Redis lost (Redis restarted without persistence): open sessions are counted
again as soon as Redis is back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from types import TracebackType
from typing import Any

import trio

from kt_trio.state.base import StateUnavailable
from kt_trio.state.breakers import ACQUIRE_FUNCTION, NOW_MS
from kt_trio.state.link import RedisLink

# ARGV: ttl_ms, lease id, with_breaker (0|1), n released; then the n lease ids to release, one
# limit per slot, and the breaker's recovery_ms and trial_timeout_ms. KEYS: the n ZSETs those
# ids are released from, the slot ZSETs, then the breaker's HASH when with_breaker is 1.
# Releases first (this instance's sessions that just ended), whatever the answer.
# -> {i} when slot i is full (nothing taken); {0} when taken; {0, <breaker_acquire's answer>}.
OPEN = (
    NOW_MS
    + ACQUIRE_FUNCTION
    + """
local ttl = tonumber(ARGV[1]); local with_breaker = tonumber(ARGV[3]); local nrel = tonumber(ARGV[4])
for i = 1, nrel do redis.call('ZREM', KEYS[i], ARGV[4 + i]) end
local nslots = #KEYS - with_breaker - nrel
local limits = 4 + nrel
for i = 1, nslots do
  local key = KEYS[nrel + i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[limits + i]) then return {i} end
end
for i = 1, nslots do
  redis.call('ZADD', KEYS[nrel + i], now + ttl, ARGV[2])
  redis.call('PEXPIRE', KEYS[nrel + i], ttl)
end
if with_breaker == 0 then return {0} end
local b = breaker_acquire(KEYS[#KEYS], tonumber(ARGV[limits + nslots + 1]), tonumber(ARGV[limits + nslots + 2]), now)
table.insert(b, 1, 0)
return b
"""
)

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

# KEYS[i] releases member ARGV[i].
RELEASE = """
for i, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[i]) end
return 0
"""

# Keys per renewal or release call: a gateway with thousands of sessions renews in a few
# bounded calls.
RENEW_CHUNK = 500
# A lease given back waits this long for this instance's next opening to carry it in its own
# script (one round trip for both, the release first, so this instance's limits stay exact);
# when none comes it goes alone, together with every other lease given back meanwhile. Other
# instances see the slot held for at most this much longer than the session.
RELEASE_DELAY_SECS = 0.02


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
        self._open = link.client.register_script(OPEN)
        self._renew = link.client.register_script(RENEW)
        self._release = link.client.register_script(RELEASE)
        # Leases held by this instance's live sessions: bounded by its open sessions.
        self.held: dict[str, tuple[str, ...]] = {}
        self._renew_now = trio.Event()
        link.when_up(lambda: self._renew_now.set())
        # (zset, lease id) given back and not yet sent: bounded by the sessions that ended within
        # one RELEASE_DELAY_SECS (or one failed call: dropped then, their TTL frees them).
        self._releasing: list[tuple[str, str]] = []
        self._release_wanted = trio.Event()
        self._releaser_running = False

    async def acquire(
        self, wanted: Sequence[tuple[str, int]], breaker: tuple[str, list[int]] | None = None
    ) -> tuple[Lease | int, list[Any] | None]:
        """A lease on every `(zset, limit)`, or the 1-based index of the first one that is full;
        with `breaker` (its key and `breaker_acquire` arguments), also that breaker's answer when
        the slots were taken. One round trip; none when there is nothing to ask. Raises
        `StateUnavailable`."""
        if not wanted and breaker is None:
            return NO_LEASE, None
        member = f"{self.instance}:{uuid.uuid4().hex}"
        released, self._releasing = self._releasing[:RENEW_CHUNK], self._releasing[RENEW_CHUNK:]
        keys = [k for k, _ in released]
        keys += (k for k, _ in wanted)
        args: list[Any] = [self.ttl_ms, member, 0 if breaker is None else 1, len(released)]
        args += (m for _, m in released)
        args += (limit for _, limit in wanted)
        if breaker is not None:
            keys.append(breaker[0])
            args.extend(breaker[1])
        answer: list[Any] = await self.link.call(lambda: self._open(keys, args))
        if int(answer[0]):
            return int(answer[0]), None
        lease = NO_LEASE
        if wanted:
            slots = tuple(k for k, _ in wanted)
            self.held[member] = slots
            lease = Lease(self, member, slots)
        return lease, (answer[1:] if breaker is not None else None)

    async def release(self, lease: Lease) -> None:
        self.held.pop(lease.member, None)
        if not self.link.available:
            return  # the lease's TTL frees it
        self._releasing.extend((key, lease.member) for key in lease.keys)
        if self._releaser_running:
            self._release_wanted.set()
            return
        # No releaser (the state is shutting down or was never run): at once, shielded and short.
        with trio.CancelScope(shield=True), trio.move_on_after(self.link.op_timeout * 2):
            await self._send_releases()

    async def releaser(self) -> None:
        """Sends the leases given back that no opening carried, RELEASE_DELAY_SECS after the first."""
        self._releaser_running = True
        try:
            while True:
                await self._release_wanted.wait()
                await trio.sleep(RELEASE_DELAY_SECS)
                self._release_wanted = trio.Event()
                await self._send_releases()
        finally:
            self._releaser_running = False

    async def flush(self) -> None:
        """Sends what is waiting now (shutdown: before the client closes)."""
        with trio.CancelScope(shield=True), trio.move_on_after(self.link.op_timeout * 2):
            await self._send_releases()

    async def _send_releases(self) -> None:
        while self._releasing and self.link.available:
            chunk, self._releasing = self._releasing[:RENEW_CHUNK], self._releasing[RENEW_CHUNK:]
            try:
                await self.link.call(partial(self._release, [k for k, _ in chunk], [m for _, m in chunk]))
            except StateUnavailable:
                self._releasing.clear()
        if not self.link.available:
            self._releasing.clear()

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
