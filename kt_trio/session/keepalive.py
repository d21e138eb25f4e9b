"""A session's keepalive: a ping on each leg every `ping_interval_secs`, and the session ended
with 1011 "keepalive timeout" when a leg's pong does not come within `pong_timeout_secs`.

One task for both legs, sleeping until the next ping or the earliest pong deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from kt_trio.session.ending import Ending, lost
from kt_trio.session.leg import Leg
from kt_trio.wire.frames import CloseCode, Opcode

log = logging.getLogger("kt_trio.session")


async def keepalive(
    legs: tuple[Leg, Leg], interval: float, timeout: float, end: Callable[[Ending], None], session_id: str
) -> None:
    """Pings `legs` until a pong is late (`end` is called with why) or the task is cancelled."""
    if interval <= 0:
        return
    next_ping = trio.current_time() + interval
    while True:
        wake = next_ping
        for leg in legs:
            if leg.ping_sent_at is not None:
                wake = min(wake, leg.ping_sent_at + timeout)
        await trio.sleep_until(wake)
        now = trio.current_time()
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
                    # keepalive; the pong deadline above then ends the session.
                    with trio.move_on_after(timeout):
                        try:
                            await leg.send(leg.frame(Opcode.PING, b"kt"))
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            end(lost(leg))
                            return
