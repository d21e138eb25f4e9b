"""Circuit breakers shared by every instance: one Redis HASH per (pack, target).

The state machine is `kt_trio.governance.breaker`'s, run inside Lua scripts against Redis's clock
so that the cluster has one state per target: failures from every instance count toward the
threshold, an open breaker is open everywhere, and exactly one instance gets the half-open
trial. Each answer is mirrored into the instance's local `CircuitBreaker`, so what reads it
synchronously (metrics, the chat app, `Retry-After`) sees the cluster's state, and the
transition is reported as a `circuit_breaker` event where it was observed.

When Redis cannot be reached the local breaker decides alone (as with the embedded backend),
and the shared state is used again as soon as Redis answers.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import trio

from kt_trio.governance.breaker import CircuitBreaker, Permit
from kt_trio.state.base import StateUnavailable
from kt_trio.state.link import RedisLink

NOW_MS = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
_READ = (
    "local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'gen', 'opened', 'trial')\n"
    "local state = h[1] or 'closed'; local failures = tonumber(h[2]) or 0; local gen = tonumber(h[3]) or 0\n"
    "local opened = tonumber(h[4]) or 0; local trial = tonumber(h[5]) or 0\n"
)

# The acquire as a Lua function, so that the session opening can run it in the same script as
# its slots (`kt_trio.state.leases.OPEN`): (breaker key, recovery_ms, trial_timeout_ms, now) ->
# {allowed, trial, gen, state, wait_ms, failures}.
ACQUIRE_FUNCTION = """
local function breaker_acquire(key, recovery, trial_timeout, now)
  local h = redis.call('HMGET', key, 'state', 'failures', 'gen', 'opened', 'trial')
  local state = h[1] or 'closed'; local failures = tonumber(h[2]) or 0; local gen = tonumber(h[3]) or 0
  local opened = tonumber(h[4]) or 0; local trial = tonumber(h[5]) or 0
  if state == 'open' then
    if now < opened + recovery then return {0, 0, gen, state, opened + recovery - now, 0} end
    state = 'half_open'; gen = gen + 1; trial = 0
    redis.call('HSET', key, 'state', state, 'gen', gen, 'trial', 0, 'failures', 0)
  end
  if state == 'half_open' then
    if trial > now then return {0, 0, gen, state, 1000, 0} end
    redis.call('HSET', key, 'trial', now + trial_timeout)
    return {1, 1, gen, state, 0, 0}
  end
  return {1, 0, gen, state, 0, failures}
end
"""

# KEYS[1] = the breaker; ARGV: recovery_ms, trial_timeout_ms
ACQUIRE = NOW_MS + ACQUIRE_FUNCTION + "return breaker_acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)\n"

# ARGV: gen, threshold -> {state after, gen after}
FAILURE = (
    NOW_MS
    + _READ
    + """
if tonumber(ARGV[1]) ~= gen then return {state, gen} end
if state == 'closed' then
  failures = failures + 1
  if failures < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], 'failures', failures); return {state, gen} end
elseif state ~= 'half_open' then
  return {state, gen}
end
redis.call('HSET', KEYS[1], 'state', 'open', 'opened', now, 'gen', gen + 1, 'failures', 0, 'trial', 0)
return {'open', gen + 1}
"""
)

# ARGV: gen -> {state after, gen after}
SUCCESS = (
    _READ
    + """
if tonumber(ARGV[1]) ~= gen then return {state, gen} end
if state == 'closed' then
  if failures > 0 then redis.call('HSET', KEYS[1], 'failures', 0) end
  return {state, gen}
end
if state == 'half_open' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'gen', gen + 1, 'failures', 0, 'trial', 0)
  return {'closed', gen + 1}
end
return {state, gen}
"""
)

ABANDON = (
    _READ
    + """
if state == 'half_open' and tonumber(ARGV[1]) == gen then redis.call('HSET', KEYS[1], 'trial', 0) end
return 0
"""
)


# The breaker's answer for a session's first target, fetched by the session opening in the same
# script as its slots (`kt_trio.state.redis_state.RedisState.admit`): (breakers, target, answer).
# Task-local on purpose: the handshake task that was admitted is the one that dials next, and
# no other task may take its permit. Consumed by the first `acquire` in that task; an answer
# never consumed (the dial did not happen) only holds a half-open trial until `trial_timeout`.
_PREFETCHED: ContextVar[tuple[SharedBreakers, str, list[Any]] | None] = ContextVar("kt_breaker_answer", default=None)


class SharedBreakers:
    """The Redis side of one pack's `UpstreamHealth` (set as its `shared`)."""

    def __init__(self, link: RedisLink, pack: str) -> None:
        self.link = link
        self.pack = pack
        client = link.client
        self._acquire = client.register_script(ACQUIRE)
        self._failure = client.register_script(FAILURE)
        self._success = client.register_script(SUCCESS)
        self._abandon = client.register_script(ABANDON)

    def key(self, target: str) -> str:
        return f"kt:breaker:{self.pack}:{target}"

    @staticmethod
    def acquire_args(breaker: CircuitBreaker) -> list[int]:
        """ARGV of `breaker_acquire` after its key: recovery and trial timeout in ms."""
        return [int(breaker.recovery_timeout_secs * 1000), int(breaker.trial_timeout_secs * 1000)]

    def prefetched(self, breaker: CircuitBreaker, answer: list[Any]) -> None:
        """Keeps `answer` (from the opening's script) for this task's next `acquire` of `breaker`."""
        _PREFETCHED.set((self, breaker.target, answer))

    async def acquire(self, breaker: CircuitBreaker, now: float) -> Permit | None:
        answer: list[Any] | None = None
        ready = _PREFETCHED.get()
        if ready is not None:
            _PREFETCHED.set(None)
            if ready[0] is self and ready[1] == breaker.target:
                answer = ready[2]
        if answer is None:
            if not self.link.available:
                return breaker.acquire(now)
            args: list[Any] = self.acquire_args(breaker)
            try:
                fetched: list[Any] = await self.link.call(lambda: self._acquire([self.key(breaker.target)], args))
            except StateUnavailable:
                return breaker.acquire(now)
            answer = fetched
        allowed, trial, gen, state, wait_ms, failures = answer
        wait = int(wait_ms) / 1000
        breaker.mirror(str(state), now, wait if state == "open" else 0.0, "shared state")
        if not int(allowed):
            return None
        trial_dial = bool(int(trial))
        matters = trial_dial or int(failures) > 0
        return Permit(breaker.target, int(gen), trial=trial_dial, shared=True, success_matters=matters)

    async def record_failure(self, breaker: CircuitBreaker, permit: Permit, now: float, reason: str) -> None:
        if not permit.shared:
            breaker.record_failure(now, reason, permit)
            return
        args: list[Any] = [permit.generation, breaker.failure_threshold]
        try:
            state: Any
            state, _ = await self.link.call(lambda: self._failure([self.key(breaker.target)], args))
        except StateUnavailable:
            breaker.record_failure(now, reason)
            return
        breaker.mirror(str(state), now, breaker.recovery_timeout_secs, reason)

    async def record_success(self, breaker: CircuitBreaker, permit: Permit, now: float) -> None:
        if not permit.shared:
            breaker.record_success(now, permit)
            return
        if not permit.success_matters:
            return  # closed with no failures counted when it was issued: nothing to reset
        try:
            state: Any
            state, _ = await self.link.call(lambda: self._success([self.key(breaker.target)], [permit.generation]))
        except StateUnavailable:
            breaker.record_success(now)
            return
        breaker.mirror(str(state), now, 0.0, "trial dial succeeded")

    async def abandon(self, breaker: CircuitBreaker, permit: Permit) -> None:
        if not permit.shared:
            breaker.abandon(permit)
            return
        with trio.CancelScope(shield=True), trio.move_on_after(self.link.op_timeout * 2):
            try:
                await self.link.call(lambda: self._abandon([self.key(breaker.target)], [permit.generation]))
            except StateUnavailable:
                pass
