"""How a session ends: one close code and reason per leg (`Ending`), the endings the gateway
decides itself, those a lost connection or a protocol error imply, and the close handshake on one
leg (RFC 6455 §7: send our close, read until the peer's, then close TCP).
"""

from __future__ import annotations

from typing import Literal

import trio
from attrs import frozen

from kt_trio.session.leg import Leg, PeerGone
from kt_trio.wire.frames import Close, CloseCode, FrameProtocolError


@frozen
class Ending:
    """How a session ended: the close code and reason each leg gets, and who ended it."""

    client_code: int
    client_reason: str
    upstream_code: int
    upstream_reason: str
    closed_by: Literal["client", "upstream", "gateway"]

    @classmethod
    def both(cls, code: int, reason: str) -> Ending:
        return cls(code, reason, code, reason, "gateway")


SHUTDOWN = Ending.both(CloseCode.GOING_AWAY, "server shutting down")
IDLE = Ending.both(CloseCode.GOING_AWAY, "idle timeout")
MAX_SESSION = Ending.both(CloseCode.GOING_AWAY, "session time limit reached")
GATEWAY_ERROR = Ending.both(CloseCode.INTERNAL_ERROR, "gateway error")
# The audit store fails (a full disk ...): what cannot be recorded is not forwarded.
AUDIT_UNAVAILABLE = Ending.both(CloseCode.INTERNAL_ERROR, "audit unavailable")


def lost(leg: Leg) -> Ending:
    """The TCP connection of `leg` ended without a close frame (RFC 6455 §7.1.5: code 1006)."""
    if leg.name == "upstream":
        return Ending(CloseCode.TRY_AGAIN_LATER, "upstream connection lost", CloseCode.ABNORMAL, "", "upstream")
    return Ending(CloseCode.ABNORMAL, "", CloseCode.GOING_AWAY, "client went away", "client")


def protocol_error(leg: Leg, exc: FrameProtocolError) -> Ending:
    """`leg` broke the WebSocket protocol (or sent a message over the size limit)."""
    if leg.name == "client":
        return Ending(exc.code, exc.reason, CloseCode.GOING_AWAY, "client session closed", "gateway")
    # The client must learn why its session ended: an oversized provider message is a 1009 for
    # it too; any other provider protocol error is a gateway-side failure (1011).
    client_code = exc.code if exc.code == CloseCode.MESSAGE_TOO_BIG else CloseCode.INTERNAL_ERROR
    return Ending(client_code, f"upstream {exc.reason}", exc.code, exc.reason, "gateway")


async def close_leg(leg: Leg, code: int, reason: str) -> None:
    """Sends our close frame on `leg` (unless it is gone) and waits for the peer's answer."""
    if leg.eof or leg.write_broken:
        return
    if code in (CloseCode.ABNORMAL, CloseCode.NO_STATUS):
        # Reserved codes never go on the wire (RFC 6455 §7.4.1); an empty close says "no status".
        code = CloseCode.NO_STATUS
    try:
        await leg.send_close(code, reason)
        # Wait for the peer's close (or EOF) before closing TCP: closing with unread data in
        # the receive buffer makes the kernel send RST, and the peer might never read our close.
        while leg.close_received is None:
            for ev in await leg.receive():
                if type(ev) is Close:
                    leg.close_received = ev
    except (PeerGone, FrameProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
