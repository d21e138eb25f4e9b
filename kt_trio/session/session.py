"""A governed WebSocket session: one nursery holding a client pump, an upstream pump and keepalive.

Lifetimes are cancel scopes (trio's design, and DESIGN.md's "Shape"):

    outer scope   deadline = start + max_session_secs; cancelled on shutdown; shortened to a
                  close timeout once a close handshake is under way
      idle scope  deadline = last data message + idle_timeout_secs, pushed on every data message
        nursery   client pump, upstream pump, keepalive

When any of them ends the session, the nursery is cancelled; the session then decides one close
code per leg (`Ending`) and runs a short, shielded close phase that sends the close frames and
waits for the peers' answers, bounded by `FINISH_TIMEOUT`. Nothing outlives `run()`.

Each pump reads a chunk from its side, handles every complete frame in it, and writes everything
that results to the other side with one `send_all` (PERFORMANCE.md: −70 % CPU against one write
per message). A write to a slow reader blocks its pump, which stops reading its own side: the
kernel's socket buffers are the only queue (backpressure, not memory).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Literal

import trio
from attrs import frozen

from kt_trio.config.schema import SessionSettings
from kt_trio.records import SessionSummary
from kt_trio.session.leg import Leg, PeerGone
from kt_trio.wire.frames import Close, CloseCode, FrameProtocolError, Message, Opcode, Ping, Pong

log = logging.getLogger("kt_trio.session")

# How long the close phase may take: enough for a peer on a live connection to answer our close
# frame, short enough that a dead peer cannot hold a shutdown or a finished session open.
FINISH_TIMEOUT = 2.0
# How long a peer has to answer a close handshake the other side started.
CLOSE_HANDSHAKE_TIMEOUT = 5.0
# Event types whose payload no policy reads: forwarded as they arrived (client mask included),
# never unmasked beyond the head that names their type.
UNINSPECTED_TYPES = frozenset({"input_audio_buffer.append", "response.output_audio.delta", "response.audio.delta"})


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


def _lost(leg: Leg) -> Ending:
    """The TCP connection of `leg` ended without a close frame (RFC 6455 §7.1.5: code 1006)."""
    if leg.name == "upstream":
        return Ending(CloseCode.TRY_AGAIN_LATER, "upstream connection lost", CloseCode.ABNORMAL, "", "upstream")
    return Ending(CloseCode.ABNORMAL, "", CloseCode.GOING_AWAY, "client went away", "client")


def _protocol_error(leg: Leg, exc: FrameProtocolError) -> Ending:
    if leg.name == "client":
        return Ending(exc.code, exc.reason, CloseCode.GOING_AWAY, "client session closed", "gateway")
    # The client must learn why its session ended: an oversized provider message is a 1009 for
    # it too; any other provider protocol error is a gateway-side failure (1011).
    client_code = exc.code if exc.code == CloseCode.MESSAGE_TOO_BIG else CloseCode.INTERNAL_ERROR
    return Ending(client_code, f"upstream {exc.reason}", exc.code, exc.reason, "gateway")


class Session:
    def __init__(
        self,
        client: Leg,
        upstream: Leg,
        settings: SessionSettings,
        *,
        route: str,
        target: str,
        model: str,
        client_ip: str,
        policies: object | None = None,
        on_summary: Callable[[SessionSummary], None] | None = None,
        session_id: str | None = None,
    ) -> None:
        self.id = session_id or uuid.uuid4().hex
        self.client = client
        self.upstream = upstream
        self.settings = settings
        self.route = route
        self.target = target
        self.model = model
        self.client_ip = client_ip
        self.policies = policies
        self._on_summary = on_summary
        self.ending: Ending | None = None
        self._shutdown = False
        self._scope = trio.CancelScope()
        self._idle = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._pumps_left = 2
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.started_at = time.time()

    # -- control from outside -------------------------------------------------------------------

    def shutdown(self) -> None:
        """Ends the session with 1001 on both legs (gateway shutdown)."""
        self._shutdown = True
        self._scope.cancel()

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> Ending:
        s = self.settings
        now = trio.current_time()
        self._scope.deadline = now + s.max_session_secs
        self._idle.deadline = now + s.idle_timeout_secs
        try:
            with self._scope:
                with self._idle:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        nursery.start_soon(self._pump, self.client, self.upstream)
                        nursery.start_soon(self._pump, self.upstream, self.client)
                        nursery.start_soon(self._keepalive)
        except Exception:
            log.exception("session %s failed", self.id)
            self._end(GATEWAY_ERROR)
        if self.ending is None:
            if self._shutdown:
                self.ending = SHUTDOWN
            elif self._idle.cancelled_caught:
                self.ending = IDLE
            elif self._scope.cancelled_caught:
                self.ending = MAX_SESSION
            else:  # pragma: no cover - every path above records an ending
                self.ending = GATEWAY_ERROR
        await self._finish(self.ending)
        if self._on_summary is not None:
            self._on_summary(self._summary(self.ending))
        return self.ending

    def _end(self, ending: Ending) -> None:
        """Records why the session ends (the first reason wins) and cancels its tasks."""
        if self.ending is None:
            self.ending = ending
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _finish(self, ending: Ending) -> None:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + FINISH_TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._close_leg, self.client, ending.client_code, ending.client_reason)
                nursery.start_soon(self._close_leg, self.upstream, ending.upstream_code, ending.upstream_reason)
        self.client.close_transport()
        self.upstream.close_transport()

    async def _close_leg(self, leg: Leg, code: int, reason: str) -> None:
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

    # -- pumps ----------------------------------------------------------------------------------

    async def _pump(self, src: Leg, dst: Leg) -> None:
        from_client = src.name == "client"
        idle = self._idle
        idle_secs = self.settings.idle_timeout_secs
        policies = self.policies
        while True:
            try:
                events = await src.receive()
            except PeerGone:
                self._end(_lost(src))
                return
            except FrameProtocolError as exc:
                self._end(_protocol_error(src, exc))
                return
            out: list[bytes | bytearray] = []
            back: list[bytes] = []
            data = False
            closed: Close | None = None
            for ev in events:
                if type(ev) is Message:
                    data = True
                    if policies is None:
                        out.append(ev.raw if ev.raw is not None else dst.frame(_opcode(ev), ev.payload()))
                    else:
                        self._govern(ev, src, dst, out, back)
                    if from_client:
                        self.messages_in += 1
                        self.bytes_in += ev.size
                    else:
                        self.messages_out += 1
                        self.bytes_out += ev.size
                elif type(ev) is Ping:
                    back.append(src.frame(Opcode.PONG, ev.payload))
                elif type(ev) is Pong:
                    src.ping_sent_at = None
                else:
                    closed = ev  # type: ignore[assignment]
                    break  # RFC 6455 §5.5.1: nothing follows a close frame
            if data:
                idle.deadline = trio.current_time() + idle_secs
            try:
                if out:
                    await dst.send_chunks(out)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._end(_lost(dst))
                return
            try:
                if back:
                    await src.send_chunks(back)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._end(_lost(src))
                return
            if closed is not None:
                await self._on_close(src, dst, closed)
                return

    def _govern(self, msg: Message, src: Leg, dst: Leg, out: list[bytes | bytearray], back: list[bytes]) -> None:
        """Runs the policy chain on one message (filled in by the policy integration)."""
        out.append(msg.raw if msg.raw is not None else dst.frame(_opcode(msg), msg.payload()))

    async def _on_close(self, src: Leg, dst: Leg, close: Close) -> None:
        """`src` sent a close frame: pass its code and reason on, and finish the handshake."""
        src.close_received = close
        if not dst.close_sent:
            # The first close of the session: `src` started the handshake. Its code and reason
            # pass through to `dst` (DESIGN.md: "the peer's own code passes through"); `dst`'s
            # answer, read by the other pump, becomes our answer to `src`.
            if self.ending is None:
                other = CloseCode.NO_STATUS if close.code == CloseCode.NO_STATUS else close.code
                if src.name == "client":
                    self.ending = Ending(close.code, close.reason, other, close.reason, "client")
                else:
                    self.ending = Ending(other, close.reason, close.code, close.reason, "upstream")
            try:
                await dst.send_close(close.code, close.reason)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            self._scope.deadline = min(self._scope.deadline, trio.current_time() + CLOSE_HANDSHAKE_TIMEOUT)
        self._pumps_left -= 1
        if self._pumps_left == 0 and self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # -- keepalive ------------------------------------------------------------------------------

    async def _keepalive(self) -> None:
        interval = self.settings.ping_interval_secs
        timeout = self.settings.pong_timeout_secs
        if interval <= 0:
            return
        legs = (self.client, self.upstream)
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
                    log.info("session %s: no pong from %s within %gs", self.id, leg.name, timeout)
                    self._end(Ending.both(CloseCode.INTERNAL_ERROR, "keepalive timeout"))
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
                                self._end(_lost(leg))
                                return

    # -- reporting ------------------------------------------------------------------------------

    def _summary(self, ending: Ending) -> SessionSummary:
        code, reason = (
            (ending.upstream_code, ending.upstream_reason)
            if ending.closed_by == "upstream"
            else (ending.client_code, ending.client_reason)
        )
        return SessionSummary(
            session_id=self.id,
            route=self.route,
            target=self.target,
            model=self.model,
            client_ip=self.client_ip,
            started_at=self.started_at,
            duration_secs=time.time() - self.started_at,
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            close_code=code,
            close_reason=reason,
            closed_by=ending.closed_by,
        )


def _opcode(msg: Message) -> int:
    return Opcode.TEXT if msg.is_text else Opcode.BINARY
