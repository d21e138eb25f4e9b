"""A session's timers: keepalive pings and the idle timeout, in one task per session.

Keepalive: a ping on each leg every `ping_interval_secs`, and the session ended with 1011
"keepalive timeout" when a leg's pong does not come within `pong_timeout_secs`.

Idle: the pumps only note when data last moved (`IdleClock.last`, one attribute store per
batch); this task sleeps until that moment plus `idle_timeout_secs` and, if nothing moved in
between, cancels the session's idle scope. Pushing the idle scope's deadline on every batch
instead cost a trio deadline-heap update (a generator-based context manager and a heap push)
per batch, ~5 % of the relay's CPU.

The task sleeps until the earliest of: the next ping, a pending pong's deadline, the idle deadline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import trio

from kt_trio.session.ending import Ending, lost
from kt_trio.session.leg import Leg
from kt_trio.wire.frames import CloseCode, Opcode

log = logging.getLogger("kt_trio.session")


class IdleClock:
    """When data last moved on a session (trio time), and the scope its silence cancels."""

    __slots__ = ("last", "scope", "timeout")

    def __init__(self, scope: trio.CancelScope, timeout: float, now: float) -> None:
        self.scope = scope
        self.timeout = timeout
        self.last = now

    @property
    def deadline(self) -> float:
        return self.last + self.timeout


async def keepalive(
    legs: tuple[Leg, Leg],
    interval: float,
    timeout: float,
    end: Callable[[Ending], None],
    session_id: str,
    idle: IdleClock | None = None,
) -> None:
    """Pings `legs` until a pong is late (`end` is called with why), cancels `idle.scope` once
    the session has been silent for `idle.timeout`, or runs until the task is cancelled."""
    pinging = interval > 0
    if not pinging and idle is None:
        return
    next_ping = trio.current_time() + interval if pinging else math.inf
    while True:
        wake = next_ping
        for leg in legs:
            if leg.ping_sent_at is not None:
                wake = min(wake, leg.ping_sent_at + timeout)
        if idle is not None:
            wake = min(wake, idle.deadline)
        await trio.sleep_until(wake)
        now = trio.current_time()
        if idle is not None and now >= idle.deadline:
            idle.scope.cancel()
            return
        for leg in legs:
            if leg.ping_sent_at is not None and now - leg.ping_sent_at >= timeout:
                log.info("session %s: no pong from %s within %gs", session_id, leg.name, timeout)
                end(Ending.both(CloseCode.INTERNAL_ERROR, "keepalive timeout"))
                return
        if now >= next_ping:
            next_ping = now + interval
            for leg in legs:
                if leg.ping_sent_at is None and not leg.close_sent:
                    leg.ping_sent_at = now
                    # A ping stuck behind a peer that does not read is itself a failed
                    # keepalive; the pong deadline above then ends the session. (An idle
                    # deadline passing meanwhile is acted on when the wait ends: cutting the
                    # write short would break the leg's framing, and data may have moved since.)
                    with trio.move_on_after(timeout):
                        try:
                            await leg.send(leg.frame(Opcode.PING, b"kt"))
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            end(lost(leg))
                            return
