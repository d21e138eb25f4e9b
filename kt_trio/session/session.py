"""A governed WebSocket session: one nursery holding a client pump, an upstream pump and keepalive.

Lifetimes are cancel scopes (trio's design, and DESIGN.md's "Shape"):

    outer scope   deadline = start + max_session_secs; cancelled on shutdown; shortened to a
                  close timeout once a close handshake is under way
      idle scope  cancelled by the timers task once idle_timeout_secs pass with no data message
                  (the pumps note each batch's time in an `IdleClock`; `keepalive`)
        nursery   client pump, upstream pump, timers (keepalive and idle)

When any of them ends the session, the nursery is cancelled; the session then decides one close
code per leg (`Ending`) and runs a short, shielded close phase that sends the close frames and
waits for the peers' answers, bounded by `FINISH_TIMEOUT`. Nothing outlives `run()`.

Each pump reads a chunk from its side, handles every complete frame in it, and writes everything
that results to the other side with one `send_all` (PERFORMANCE.md: −70 % CPU against one write
per message). A write to a slow reader blocks its pump, which stops reading its own side: the
kernel's socket buffers are the only queue (backpressure, not memory).

Beside it: `ending` (close codes per leg, the close handshake), `judging` (the policy chain and
the guardrail on one message), `message_log` (per-message audit records and events), `keepalive`,
`governor` (limits, budgets, usage) and `leg` (one side's WebSocket connection).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence

import trio

from kt_trio.audit.entries import AuditError
from kt_trio.config.schema import SessionSettings
from kt_trio.governance.budget import SessionBudget
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.governance.spend import SpendMeter
from kt_trio.guardrail.edge import SessionGuard
from kt_trio.policies.chain import SessionPolicies
from kt_trio.pricing import Pricing
from kt_trio.protocol.events import AUDIO_TYPES
from kt_trio.protocol.fast import event_type as sniffed_type
from kt_trio.protocol.sniff import event_type as parsed_event_type
from kt_trio.records import PolicyDecision, Record, SessionStarted, SessionSummary
from kt_trio.reporting import AuditSink, KeyTokens, ReportingPoint
from kt_trio.session.ending import (
    AUDIT_UNAVAILABLE,
    GATEWAY_ERROR,
    IDLE,
    MAX_SESSION,
    SHUTDOWN,
    Ending,
    close_leg,
    lost,
    protocol_error,
)
from kt_trio.session.governor import SessionGovernor
from kt_trio.session.judging import govern, guard_client, guard_upstream
from kt_trio.session.keepalive import IdleClock, keepalive
from kt_trio.session.leg import Leg, PeerGone
from kt_trio.session.message_log import MessageLog
from kt_trio.wire.frames import Close, CloseCode, FrameProtocolError, Message, Opcode, Ping, Pong

log = logging.getLogger("kt_trio.session")


# How long the close phase may take: enough for a peer on a live connection to answer our close
# frame, short enough that a dead peer cannot hold a shutdown or a finished session open.
FINISH_TIMEOUT = 2.0
# A text message whose type is not in the two shapes the sniff knows is parsed to learn it when
# it is at most this big (well under 50 µs of json.loads); a larger one goes on with no type
# (no usage tap, counted by the rate limit as untyped) rather than costing a full parse.
PARSE_TO_TYPE_LIMIT = 16 * 1024
# How long a peer has to answer a close handshake the other side started.
CLOSE_HANDSHAKE_TIMEOUT = 5.0


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
        policies: SessionPolicies | None = None,
        limiters: Sequence[MessageRateLimiter] = (),
        budget: SessionBudget | None = None,
        key_tokens: KeyTokens | None = None,
        spend: SpendMeter | None = None,
        audit: AuditSink | None = None,
        report: Callable[[str | None, Record], None] | None = None,
        on_relay_time: Callable[[float], None] | None = None,
        key_name: str | None = None,
        team: str | None = None,
        user_agent: str | None = None,
        session_id: str | None = None,
        message_events: bool = False,
        pricing: Pricing | None = None,
        allowed_models: frozenset[str] | None = None,
        guard: SessionGuard | None = None,
    ) -> None:
        """`message_events`: publish a `MessagesRelayed` per relayed message (DESIGN.md
        `features.websocket.message_events`)."""
        self.id = session_id or uuid.uuid4().hex
        self._guard = guard
        self.client = client
        self.upstream = upstream
        self.settings = settings
        self.route = route
        self.target = target
        self.model = model
        self.client_ip = client_ip
        self.policies = policies
        self.user_agent = user_agent
        self._on_relay_time = on_relay_time
        self.key_name = key_name
        self.team = team
        self.governor = SessionGovernor(
            session_id=self.id,
            target=target,
            url_model=model,
            limiters=limiters,
            budget=budget,
            emit=self._emit,
            key_tokens=key_tokens,
            spend=spend,
            allowed_models=allowed_models,
            protocol="responses" if route == "/v1/responses" else "realtime",
        )
        # Records go to the reporter at once and, with the audit log on, to it before the batch
        # that produced them is forwarded (`_write_audit`).
        self._reporting = ReportingPoint(
            self.id, report, audit, key_name=key_name, team=team, pricing=pricing, spend=spend
        )
        self._audited = audit is not None
        self._message_log = MessageLog(self.id, self._emit, audit, report if message_events else None)
        self._log_messages = self._message_log.active
        self.ending: Ending | None = None
        self._shutdown = False
        self._scope = trio.CancelScope()
        self._idle = trio.CancelScope()
        self._idle_clock = IdleClock(self._idle, settings.idle_timeout_secs, trio.current_time())
        self._nursery: trio.Nursery | None = None
        self._pumps_left = 2
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.started_at = time.time()
        self.opened_at = trio.current_time()

    # -- control from outside -------------------------------------------------------------------

    def shutdown(self) -> None:
        """Ends the session with 1001 on both legs (gateway shutdown)."""
        self._shutdown = True
        self._scope.cancel()

    def terminate(self, code: int, reason: str) -> None:
        """Ends the session from outside (e.g. its key was revoked): `code` to the client."""
        self._end(Ending(code, reason, CloseCode.GOING_AWAY, "session terminated by the gateway", "gateway"))

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> Ending:
        s = self.settings
        self._emit(
            SessionStarted(
                session_id=self.id,
                route=self.route,
                target=self.target,
                model=self.model,
                client_ip=self.client_ip,
                started_at=self.started_at,
                user_agent=self.user_agent,
                key_name=self.key_name,
                team=self.team,
            )
        )
        await self._write_audit()
        now = trio.current_time()
        self._scope.deadline = now + s.max_session_secs
        self._idle_clock.last = now
        try:
            with self._scope:
                with self._idle:
                    if self.ending is not None:  # its start could not be recorded
                        self._scope.cancel()
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        nursery.start_soon(self._pump, self.client, self.upstream)
                        nursery.start_soon(self._pump, self.upstream, self.client)
                        nursery.start_soon(
                            keepalive,
                            (self.client, self.upstream),
                            s.ping_interval_secs,
                            s.pong_timeout_secs,
                            self._end,
                            self.id,
                            self._idle_clock,
                        )
        except Exception:
            log.exception("session %s failed", self.id)
            self._end(GATEWAY_ERROR)
        except BaseException:
            # Cancelled from outside (the gateway's shutdown deadline passed): no time for close
            # frames, but the sockets are closed and the session still reports its end.
            self.ending = self.ending or SHUTDOWN
            self.client.close_transport()
            self.upstream.close_transport()
            self._emit(self._summary(self.ending))
            raise
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
        self._message_log.flush()
        self._emit(self._summary(self.ending))
        # The session's last records must reach the audit log even when it ends by cancellation
        # (shutdown); the log's own shutdown flush bounds how long this can take.
        with trio.CancelScope(shield=True):
            await self._write_audit()
        return self.ending

    def _emit(self, record: Record) -> None:
        self._reporting.emit(record)

    async def _write_audit(self) -> None:
        """Hands this batch's records to the audit log, so nothing is forwarded unaudited.

        When the log cannot take them (its store fails), the session ends with 1011 "audit
        unavailable": inside the pumps the checkpoint below raises the cancellation `_end` just
        asked for, so the caller forwards nothing more."""
        try:
            await self._reporting.write_audit()
        except AuditError as exc:
            log.warning("session %s: %s", self.id, exc)
            self._end(AUDIT_UNAVAILABLE)
            await trio.lowlevel.checkpoint()

    def _end(self, ending: Ending) -> None:
        """Records why the session ends (the first reason wins) and cancels its tasks."""
        if self.ending is None:
            self.ending = ending
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _finish(self, ending: Ending) -> None:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + FINISH_TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(close_leg, self.client, ending.client_code, ending.client_reason)
                nursery.start_soon(close_leg, self.upstream, ending.upstream_code, ending.upstream_reason)
        self.client.close_transport()
        self.upstream.close_transport()

    # -- pumps ----------------------------------------------------------------------------------

    async def _pump(self, src: Leg, dst: Leg) -> None:
        try:
            await self._relay(src, dst)
        except _SendFailed as exc:
            self._end(lost(exc.leg))

    async def _relay(self, src: Leg, dst: Leg) -> None:
        from_client = src.name == "client"
        idle = self._idle_clock
        policies = self.policies
        governor = self.governor
        spend = governor.spend
        client_types = governor.client_types
        server_types = governor.server_types
        clock = governor.clock
        reporting = self._reporting if self._audited else None  # records wait only for an audit log
        while True:
            try:
                events = await src.receive()
            except PeerGone:
                self._end(lost(src))
                return
            except FrameProtocolError as exc:
                self._end(protocol_error(src, exc))
                return
            arrived = time.perf_counter()
            out: list[bytes | bytearray] = []  # frames for dst, sent with one write
            back: list[bytes | bytearray] = []  # frames for src (pongs, error events)
            data = False
            closed: Close | None = None
            stop: tuple[int, str] | None = None
            for ev in events:
                if type(ev) is Message:
                    data = True
                    if from_client:
                        self.messages_in += 1
                        self.bytes_in += ev.size
                    else:
                        self.messages_out += 1
                        self.bytes_out += ev.size
                    if not ev.is_text:
                        out.append(ev.raw if ev.raw is not None else dst.frame(Opcode.BINARY, ev.payload()))
                        if self._log_messages:
                            self._message_log.message(from_client, None, ev, ev.payload(), ())
                        continue
                    event_type = sniffed_type(ev.head())
                    if event_type is None and ev.size <= PARSE_TO_TYPE_LIMIT:
                        event_type = parsed_event_type(ev.payload())
                    if from_client:
                        gate = (
                            governor.client_message(event_type, ev.payload, trio.current_time())
                            if client_types is None or event_type in client_types
                            else None
                        )
                        if gate is not None:
                            if gate.reply is not None:
                                back.append(src.frame(Opcode.TEXT, gate.reply))
                                if self._log_messages:
                                    self._message_log.message(from_client, event_type, ev, None, ())
                                continue
                            # `mode: delay`: relay what came before, then hold this message, and
                            # with it the reading of this client, until the bucket allows it.
                            await self._write_audit()
                            await _flush(src, dst, out, back)
                            out, back = [], []
                            await trio.sleep_until(gate.delay_until)  # type: ignore[arg-type]
                    elif event_type in server_types or clock.awaiting_chunk:
                        stop = governor.upstream_message(event_type, ev.payload)
                    forwarded: bytes | bytearray | None = None
                    decisions: tuple[PolicyDecision, ...] = ()
                    guard = self._guard
                    if guard is not None and not from_client and guard.wants(event_type, False):
                        # A completed assistant text: the guardrail judges it as the provider
                        # wrote it, before the chain (which redacts what the client sees of it).
                        ev, closing = await guard_upstream(guard, ev, event_type, dst, out, self._emit)
                        if closing:
                            stop = (CloseCode.POLICY_VIOLATION, "blocked by the external-guardrail policy")
                    mark = len(out)  # where this message's forwarded frame goes
                    if policies is None or event_type in AUDIO_TYPES or policies.passes(event_type, from_client):
                        # Audio carries no text, and a type no policy reads passes unread: forwarded
                        # as it arrived, never unmasked past its head; only the audio of a response
                        # a policy cancelled is dropped.
                        if (
                            policies is None
                            or from_client
                            or event_type not in AUDIO_TYPES
                            or not policies.audio_of_cancelled(ev.head())
                        ):
                            # `forwarded` may be the raw (masked) frame: the audit record unmasks
                            # it only if it stores content, which audio never does.
                            forwarded = ev.raw if ev.raw is not None else ev.payload()
                            out.append(ev.raw if ev.raw is not None else dst.frame(Opcode.TEXT, forwarded))
                    else:
                        verdict = govern(
                            policies, ev, event_type, from_client, src, dst, out, back, self._emit, self.id
                        )
                        stop = verdict.close or stop
                        forwarded, decisions = verdict.forward, verdict.decisions
                    if guard is not None and from_client and forwarded is not None and guard.wants(event_type, True):
                        # A client text: the guardrail judges it after the chain (as the
                        # provider would get it); the message, and this leg's reading, wait.
                        text_msg = ev.payload() if forwarded is ev.raw else forwarded
                        forwarded, closing = await guard_client(
                            guard, text_msg, event_type, src, dst, out, back, mark, self._emit
                        )
                        if closing:
                            stop = (CloseCode.POLICY_VIOLATION, "blocked by the external-guardrail policy")
                    if self._log_messages:
                        self._message_log.message(from_client, event_type, ev, forwarded, decisions)
                    if stop is not None:
                        break  # nothing after a policy close is forwarded
                elif type(ev) is Ping:
                    back.append(src.frame(Opcode.PONG, ev.payload))
                elif type(ev) is Pong:
                    src.ping_sent_at = None
                    src.pongs_received += 1
                else:
                    closed = ev  # type: ignore[assignment]
                    break  # RFC 6455 §5.5.1: nothing follows a close frame
            if data:
                idle.last = trio.current_time()
            if governor.unsettled_tokens or (spend is not None and spend.pending > 0):  # governor.unsettled
                await governor.settle_key_tokens()
            if reporting is not None and reporting.has_pending:
                await self._write_audit()
            if back:
                await _flush(src, dst, out, back)
            elif out:  # the common case, without `_flush`'s layers
                try:
                    await dst.send(out[0] if len(out) == 1 else b"".join(out))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    raise _SendFailed(dst) from None
            if self._on_relay_time is not None and data:
                # Once per batch, not per message: the time its messages spent in the gateway.
                self._on_relay_time(time.perf_counter() - arrived)
            if stop is not None:
                code, reason = stop
                self._end(Ending(code, reason, CloseCode.GOING_AWAY, "session closed by policy", "gateway"))
                return
            if closed is not None:
                await self._on_close(src, dst, closed)
                return

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
            model=self.governor.model or self.model,
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
            usage=self.governor.total,
            key_name=self.key_name,
            team=self.team,
        )


class _SendFailed(Exception):
    def __init__(self, leg: Leg) -> None:
        self.leg = leg


async def _flush(src: Leg, dst: Leg, out: list[bytes | bytearray], back: list[bytes | bytearray]) -> None:
    """Sends what one batch produced: `out` to dst first (the relay), then `back` to src."""
    for leg, frames in ((dst, out), (src, back)):
        if frames:
            try:
                await leg.send_chunks(frames)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _SendFailed(leg) from None
