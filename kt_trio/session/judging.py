"""One text message of a session through the policy chain and the external guardrail.

Each function appends the frames that result to the batch being built: `out` for the leg the
message goes to, `back` for the leg it came from (which of them is the client depends on the
direction), and emits the policy decisions as records. The relay (`Session._relay`) decides
when each applies and writes the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from kt_trio.guardrail.edge import SessionGuard
from kt_trio.policies.chain import DROP, SessionPolicies, Verdict
from kt_trio.protocol import errors
from kt_trio.records import Record
from kt_trio.session.leg import Leg
from kt_trio.wire.frames import Message, Opcode

log = logging.getLogger("kt_trio.session")

Frames = list[bytes | bytearray]


def govern(
    policies: SessionPolicies,
    msg: Message,
    event_type: str | None,
    from_client: bool,
    src: Leg,
    dst: Leg,
    out: Frames,
    back: Frames,
    emit: Callable[[Record], None],
    session_id: str,
) -> Verdict:
    """Runs the policy chain on one text message; the verdict says what was forwarded.

    `out` collects frames for `dst`, `back` frames for `src`; which of them is the client
    depends on the direction.
    """
    data = msg.payload()
    try:
        if from_client:
            verdict = policies.on_client_message(data, True, trio.current_time(), event_type)
        else:
            verdict = policies.on_upstream_message(data, True, trio.current_time(), event_type)
    except Exception:
        # The chain catches each policy's errors itself (on_error); this is a bug in the
        # chain. Fail closed for this message and keep the session.
        log.exception("session %s: policy chain failed", session_id)
        err = errors.error_event(error_type="server_error", code="policy_chain_error", message="policy error")
        (back if from_client else out).append((src if from_client else dst).frame(Opcode.TEXT, err))
        return DROP
    forward = verdict.forward
    if forward is data:
        out.append(msg.raw if msg.raw is not None else dst.frame(Opcode.TEXT, data))
    elif forward is not None:
        out.append(dst.frame(Opcode.TEXT, forward))
    if verdict.to_client:
        client, frames = (src, back) if from_client else (dst, out)
        frames.extend(client.frame(Opcode.TEXT, m) for m in verdict.to_client)
    if verdict.to_upstream:
        upstream, frames = (dst, out) if from_client else (src, back)
        frames.extend(upstream.frame(Opcode.TEXT, m) for m in verdict.to_upstream)
    for decision in verdict.decisions:
        emit(decision)
    return verdict


async def guard_client(
    guard: SessionGuard,
    data: bytes | bytearray,
    event_type: str | None,
    src: Leg,
    dst: Leg,
    out: Frames,
    back: Frames,
    mark: int,
    emit: Callable[[Record], None],
) -> tuple[bytes | bytearray | None, bool]:
    """Replace (or drop) the frame at `out[mark]` as the guardrail decides; its error event
    goes back to the client. Returns what was forwarded and whether the session closes."""
    result = await guard.on_client(data, event_type)
    for decision in result.decisions:
        emit(decision)
    if result.forward is not data:
        if result.forward is None:
            del out[mark]
        else:
            out[mark] = dst.frame(Opcode.TEXT, result.forward)
    back.extend(src.frame(Opcode.TEXT, m) for m in result.to_client)
    return result.forward, result.close


async def guard_upstream(
    guard: SessionGuard,
    ev: Message,
    event_type: str | None,
    client: Leg,
    out: Frames,
    emit: Callable[[Record], None],
) -> tuple[Message, bool]:
    """The provider's message as the guardrail leaves it (a text emptied or redacted), its
    error event queued for the client first; and whether the session closes."""
    data = ev.payload()
    result = await guard.on_upstream(data, event_type)
    for decision in result.decisions:
        emit(decision)
    out.extend(client.frame(Opcode.TEXT, m) for m in result.to_client)
    if result.forward is not data and result.forward is not None:
        ev = Message(True, None, 0, None, bytes(result.forward))
    return ev, result.close
