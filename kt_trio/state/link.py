"""The one Redis client of a process, whether Redis is reachable, and each change of that.

Every shared-state call goes through `RedisLink.call`: a short deadline, no retries (coredis's
default retries three times, which turns a dead Redis into a slow handshake), and a verdict:
the result, or `StateUnavailable`. The first failure marks the link down and, from then on,
callers are told at once without a round trip (`available` is False) while one probe task
pings Redis every `PROBE_SECS` until it answers. Each transition is reported once, through
`on_change`, which the gateway turns into a `system` event and the `kt_state_backend_up` gauge.

coredis 6 facts this is built around (see shared/research/scale-out.md): the client must be
entered (`async with client`) before any command and runs its pool in a task group, so it is
held by a task of its own (`run`) and exceptions from our code never pass through that group;
commands are awaitables, not coroutine functions, hence the `Callable[[], Awaitable]` here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import coredis
import coredis.exceptions
import trio
from coredis.retry import NoRetryPolicy

from kt_trio.state.base import StateUnavailable

log = logging.getLogger("kt_trio.state")

T = TypeVar("T")

# A call that has not answered in this long is a Redis in trouble: a healthy one on a LAN
# answers in well under a millisecond, and a handshake must not wait on it for longer.
OP_TIMEOUT_SECS = 0.5
# How often a down link asks Redis whether it is back (one PING each time, nothing else).
PROBE_SECS = 0.2
# Errors that mean "Redis cannot be reached or answered too late", as opposed to a bug.
UNREACHABLE: tuple[type[Exception], ...] = (
    coredis.exceptions.ConnectionError,
    TimeoutError,
    OSError,
)


def redacted(url: str) -> str:
    """The URL as logs and events may show it: scheme, host, port and db, never a password."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        on_change: Callable[[bool, str], None] = lambda up, why: None,
        op_timeout: float = OP_TIMEOUT_SECS,
    ) -> None:
        self.where = redacted(url)
        self.op_timeout = op_timeout
        self.client: coredis.Redis[str] = coredis.Redis.from_url(
            url,  # `${ENV}` references were expanded by the config loader
            decode_responses=True,
            connect_timeout=op_timeout,
            stream_timeout=op_timeout,
            retry_policy=NoRetryPolicy(),
        )
        self.available = True
        self._on_change = on_change
        self._on_up: list[Callable[[], None]] = []
        self._went_down = trio.Event()
        self._came_up = trio.Event()
        self.calls = 0  # round trips attempted, for tests and the bench

    def when_up(self, hook: Callable[[], None]) -> None:
        """Run `hook` (sync, quick) each time the link comes back (re-assert leases, re-read state)."""
        self._on_up.append(hook)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Holds the client open and probes while it is down; cancel to close."""
        async with self.client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._probe)
                # One PING at startup, so a gateway started while Redis is down says so at once.
                try:
                    await self.call(self._ping)
                except StateUnavailable:
                    pass
                task_status.started()

    async def _ping(self) -> Any:
        return await self.client.ping()

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One round trip (or one pipeline) with the link's deadline; `StateUnavailable` on failure."""
        self.calls += 1
        with trio.move_on_after(self.op_timeout * 2):
            try:
                result = await fn()
            except UNREACHABLE as exc:
                self._down(type(exc).__name__)
                raise StateUnavailable(f"redis at {self.where}: {type(exc).__name__}") from None
            self._up()
            return result
        self._down("timeout")
        raise StateUnavailable(f"redis at {self.where}: no answer within {self.op_timeout * 2:g}s")

    async def add_to_counters(self, increments: Sequence[tuple[str, int, int]]) -> list[int]:
        """One pipeline: INCRBY each `(key, n, ttl_secs)` and refresh its expiry; the totals after,
        in order. How every batched counter (messages per minute, daily tokens and dollars)
        reaches Redis: one round trip per sync, whatever the number of keys."""

        async def pipeline() -> tuple[Any, ...]:
            async with self.client.pipeline(transaction=False) as p:
                for key, n, ttl in increments:
                    p.incrby(key, n)
                    p.expire(key, ttl)
            return tuple(p.results or ())

        results = await self.call(pipeline)
        return [int(results[2 * i]) for i in range(len(increments))]

    async def wait_up(self) -> None:
        while not self.available:
            await self._came_up.wait()

    async def wait_down(self) -> None:
        while self.available:
            await self._went_down.wait()

    def _down(self, why: str) -> None:
        if not self.available:
            return
        self.available = False
        self._went_down.set()
        self._came_up = trio.Event()
        log.warning("shared state unavailable", extra={"fields": {"redis": self.where, "error": why}})
        self._on_change(False, why)

    def _up(self) -> None:
        if self.available:
            return
        self.available = True
        self._came_up.set()
        self._went_down = trio.Event()
        log.warning("shared state available again", extra={"fields": {"redis": self.where}})
        self._on_change(True, "redis answered")
        for hook in self._on_up:
            hook()

    async def _probe(self) -> None:
        while True:
            await self.wait_down()
            await trio.sleep(PROBE_SECS)
            try:
                await self.call(self._ping)
            except StateUnavailable:
                pass
