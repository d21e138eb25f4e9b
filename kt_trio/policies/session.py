"""The policy chain as a WebSocket session sees it: one message in, one `Verdict` out.

A thin adapter over the judging engine (`kt_trio.policies.engine`) for the Realtime API and the
Responses API WebSocket mode. Each text message is decoded once into the message model of
`kt_trio.protocol.messages` (the byte path or `json.loads`), its texts go to the engine, and
what the provider's output did to the session's state (responses cancelled, items blocked,
parts open or held) lives in `kt_trio.policies.output_state`. No I/O (the sans-IO style of h11
and wsproto): the session owns the sockets and carries the verdict out.

Cost on the hot path: binary frames and audio (`input_audio_buffer.append`,
`response.output_audio.delta`) are recognised from their first bytes (`protocol.fast.event_type`)
and passed as the same bytes object; events that carry no text are not parsed; a message no
policy changed is forwarded as the bytes that arrived; a rewritten delta decoded by the byte
path is the original bytes with the new text spliced in. Other rewritten messages are
re-serialised (compact, UTF-8).

Output block (DESIGN.md, issue 3): the offending event is dropped, the client gets a
`policy_violation` error event, and — Realtime only — the provider gets one
`response.cancel` naming that response, so concurrent responses go on. Later deltas of the
cancelled response are dropped silently; events that repeat its text (`response.done`,
`conversation.item.done`, ...) are forwarded with the text emptied, so the client's state
machine still sees the response end. The Responses WebSocket mode has no cancel event, so
there the gateway only stops relaying that response's text.

The transcription of the user's own speech (`conversation.item.input_audio_transcription.*`)
comes from the provider but is *input*: input policies judge it. A block there cannot un-say
the audio, so the gateway deletes that item from the conversation
(`conversation.item.delete`) and cancels any response in progress, so the model does not act
on it.

What the session does with each message is a `Verdict` (`kt_trio.policies.verdict`).
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from kt_trio.policies.base import TextView
from kt_trio.policies.engine import Judgement, TextPolicy, judge_bot, judge_texts, policy_error, redact_texts
from kt_trio.policies.output_state import OutputState, SessionPart
from kt_trio.policies.pii import redact
from kt_trio.policies.verdict import DROP, Verdict, close_reason, sequence, verdict
from kt_trio.protocol import errors
from kt_trio.protocol.errors import Protocol
from kt_trio.protocol.events import (
    AUDIO_TYPES,
    INPUT_TEXT_TYPES,
    ORIGINAL_WHOLE_TYPES,
    OUTPUT_TEXT_TYPES,
    REPEAT_TYPES,
    STREAM_DELTA,
    STREAM_DONE,
    USER_FAMILIES,
    input_slots,
    item_id_of,
    part_key,
    repeat_slots,
)
from kt_trio.protocol.fast import event_type, loads, splice_string
from kt_trio.protocol.messages import GA_DELTA_TYPES, ClientText, TextDelta, delta_of, fast_delta, fast_item_create
from kt_trio.records import Direction

if TYPE_CHECKING:
    from kt_trio.policies.bot import BotSession
    from kt_trio.policies.chain import PolicyChain

# `verdict`'s construction, inlined on the delta path (a Python call less per delta).
_tuple_new = tuple.__new__
_RESPONSE_END_TYPES = frozenset({"response.done", "response.completed", "response.incomplete", "response.failed"})
_RESPONSE_START_TYPES = frozenset({"response.created"})
_OUTPUT_INTERESTING = OUTPUT_TEXT_TYPES | _RESPONSE_START_TYPES


class SessionPolicies:
    """Per-session policy state: the output state machine and the bot detector's cadence."""

    def __init__(
        self,
        chain: PolicyChain,
        *,
        session_id: str,
        user_agent: str | None,
        client_ip: str,
        key_id: str | None,
        protocol: Protocol,
    ) -> None:
        self.chain = chain
        self.session_id = session_id
        self.protocol: Protocol = protocol
        self._bot: BotSession | None = (
            chain.bot.new_session(user_agent=user_agent, key=key_id or client_ip) if chain.bot else None
        )
        self.state = OutputState()
        # The bot detector reads the text of text events too (repeated messages).
        self._input_needs_parse = bool(chain.input_text_policies) or chain.bot is not None

    # ------------------------------------------------------------------ client → provider

    def on_client_message(self, data: bytes, is_text: bool, now: float, sniffed: str | None = None) -> Verdict:
        """`sniffed`: the type the caller already sniffed from these bytes (`event_type`), so the
        per-message sniff is not done twice; None: sniffed here."""
        if not is_text:
            return verdict(data, None)
        t = sniffed if sniffed is not None else event_type(data)
        if t in AUDIO_TYPES:
            return verdict(data, t)
        if t is not None and (t not in INPUT_TEXT_TYPES or not self._input_needs_parse):
            if self._bot is None:
                return verdict(data, t)
            v = self._judge_client(data, (t, None, [], None), now, bot_only=True)
            assert v is not None  # only the byte path defers
            return v
        if t == "conversation.item.create":
            msg = fast_item_create(data)
            if msg is not None:
                v = self._judge_client(data, msg, now)
                if v is not None:
                    return v
        try:
            obj = loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
            return Verdict(
                None,
                to_client=(errors.invalid_request(f"The message is not valid JSON: {exc}", protocol=self.protocol),),
                event_type=t,
            )
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            return Verdict(
                None,
                to_client=(
                    errors.invalid_request(
                        "The message must be a JSON object with a string 'type'.", protocol=self.protocol
                    ),
                ),
                event_type=t,
            )
        t = obj["type"]
        eid = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        v = self._judge_client(data, (t, eid, input_slots(obj) if self._input_needs_parse else [], obj), now)
        assert v is not None
        return v

    def _judge_client(self, data: bytes, msg: ClientText, now: float, *, bot_only: bool = False) -> Verdict | None:
        """Judges one decoded client message. For the byte path (`msg.obj` None) only the outcome
        "no text policy had anything to say" is decided here; otherwise None, and the caller
        takes the parsing path, which judges the same text again (text policies are pure)."""
        t, eid, slots, obj = msg
        out: Judgement | None = None  # made only when something is decided (rarely)
        if slots and not bot_only:
            if obj is None:
                view = TextView(slots[0][0][0])
                quiet = self.chain.input_quiet
                if quiet is None or not view.is_quiet(quiet):
                    out = judge_texts(slots, self.chain.input_text_policies, "input", t, eid, view=view)
                    if out.decisions or out.changed or out.stop is not None:
                        return None
            else:
                out = judge_texts(slots, self.chain.input_text_policies, "input", t, eid)
        bot = self._bot
        if bot is not None and (out is None or out.stop is None):
            if not slots:
                text = None
            elif len(slots) == 1:
                text = slots[0][0][slots[0][1]]
            else:
                text = "\n".join(c[k] for c, k in slots)
            out = judge_bot(out, bot, now, text, t, eid)
        if out is None:
            return _tuple_new(Verdict, (data, (), (), None, (), t))  # `verdict`, a call less
        if out.stop is not None:
            return self._stop_input(out, t, eid)
        forward = errors.dumps(obj) if out.changed else data
        return verdict(forward, t, tuple(out.decisions) if out.decisions else ())

    def _stop_input(self, out: Judgement, t: str | None, eid: str | None) -> Verdict:
        assert out.stop is not None
        action, policy, reason = out.stop
        if action == "close":
            return Verdict(
                None, close=(1008, close_reason(policy, reason)), decisions=tuple(out.decisions), event_type=t
            )
        err = errors.policy_violation(policy, reason, client_event_id=eid, protocol=self.protocol)
        return Verdict(None, to_client=(err,), decisions=tuple(out.decisions), event_type=t)

    # ------------------------------------------------------------------ provider → client

    def on_upstream_message(self, data: bytes, is_text: bool, now: float, sniffed: str | None = None) -> Verdict:
        """`sniffed` as for `on_client_message`."""
        if not is_text:
            return verdict(data, None)
        t = sniffed if sniffed is not None else event_type(data)
        if t in AUDIO_TYPES:
            # (`anything_blocked` first: the check slices and searches the message's head)
            if self.state.anything_blocked and self.state.audio_of_cancelled(data[:512]):
                return DROP
            return verdict(data, t)
        if t is not None and t not in _OUTPUT_INTERESTING:
            return verdict(data, t)
        if t in GA_DELTA_TYPES:
            fast = fast_delta(data, t)
            if fast is not None:
                return self._on_delta(data, fast)
        try:
            obj = loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return Verdict(data, event_type=t)  # the provider's bytes are not ours to refuse
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            return Verdict(data, event_type=t)
        t = obj["type"]
        if t in STREAM_DELTA:
            msg = delta_of(obj, t, self.state.current_response if self.protocol == "responses" else None)
            return self._on_delta(data, msg) if msg is not None else verdict(data, t)
        if t in STREAM_DONE:
            return self._on_done(data, obj, t)
        if t in _RESPONSE_START_TYPES:
            resp = obj.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("id"), str):
                self.state.response_created(resp["id"])
            return Verdict(data, event_type=t)
        if t in ORIGINAL_WHOLE_TYPES:
            return self._on_whole(data, obj, t)
        if t in REPEAT_TYPES:
            return self._on_repeat(data, obj, t)
        return Verdict(data, event_type=t)

    def passes(self, t: str | None, from_client: bool) -> bool:
        """Whether a text message whose sniffed type is `t` goes on as it arrived without the
        chain reading it (the answer `on_*_message` would give without parsing it), so the
        session need not hand it over: a type that carries no text a policy reads, when no bot
        detector counts client events. Audio is the session's to check (`audio_of_cancelled`)."""
        if t is None:
            return False
        if from_client:
            return self._bot is None and (t not in INPUT_TEXT_TYPES or not self._input_needs_parse)
        return t not in _OUTPUT_INTERESTING and t not in AUDIO_TYPES

    def audio_of_cancelled(self, head: bytes | bytearray | memoryview) -> bool:
        """Whether an output audio delta, by its first bytes, belongs to a response a policy
        cancelled (the session should drop it). False at once while nothing was cancelled, so a
        session that short-cuts audio past `on_upstream_message` can ask this instead."""
        return self.state.anything_blocked and self.state.audio_of_cancelled(bytes(head[:512]))

    def _rid(self, obj: dict[str, Any]) -> str | None:
        rid = obj.get("response_id")
        if isinstance(rid, str):
            return rid
        return self.state.current_response if self.protocol == "responses" else None

    def _policies_for(self, family: str) -> tuple[tuple[TextPolicy, ...], Direction]:
        if family in USER_FAMILIES:
            return self.chain.input_text_policies, "input"
        return self.chain.output_policies, "output"

    def _on_delta(self, data: bytes, msg: TextDelta) -> Verdict:
        """One streamed delta through its part's `StreamPart`; a delta decoded by the byte path
        (`msg.obj` None) is rewritten by splicing its new text into the original bytes."""
        # One unpacking instead of an attribute lookup per field: this runs for every delta.
        t, field, family, delta, eid, rid, iid, key, obj, start = msg
        state = self.state
        if state.anything_blocked and state.is_blocked(rid, iid):
            return DROP
        if family in USER_FAMILIES:
            policies, direction = self.chain.input_text_policies, "input"
        else:
            policies, direction = self.chain.output_policies, "output"
        if not policies:
            return _tuple_new(Verdict, (data, (), (), None, (), t))
        extra: list[bytes] | None = None  # messages of an evicted part, made only then
        part = state.parts.get(key)
        if part is None:
            template = obj if obj is not None else loads(data)
            part = SessionPart({k: v for k, v in template.items() if k != field}, policies, direction)
            evicted = state.open_part(key, part)
            if evicted is not None:
                extra = self._flush(evicted)
        emit, out = part.feed(delta, t, eid)
        if out is not None:
            if out.stop is not None:
                return self._stop_output(out, t, rid, iid, family, extra or [])
            decisions = tuple(out.decisions)
        else:
            decisions = ()
        if not extra:
            if emit == delta:
                # The common case, as `verdict` makes it (inlined: a call less per delta).
                return _tuple_new(Verdict, (data, (), (), None, decisions, t))
            if emit and start is not None:
                # The common rewrite (part of the text held back, or redacted): one message.
                return _tuple_new(
                    Verdict,
                    (
                        b"".join((data[: start - 1], encode_basestring(emit).encode("utf-8"), b"}")),
                        (),
                        (),
                        None,
                        decisions,
                        t,
                    ),
                )
        msgs = extra if extra is not None else []
        if emit:
            if start is not None:
                msgs.append(b"".join((data[: start - 1], encode_basestring(emit).encode("utf-8"), b"}")))
            else:
                assert obj is not None
                msgs.append(_with_text(data, obj, field, delta, emit))
        return sequence(msgs, decisions, t)

    def _flush(self, part: SessionPart) -> list[bytes]:
        """A synthetic delta carrying a part's held tail (evicted, or its response ended)."""
        tail, _ = part.flush(judge=False)
        return [self._synthetic_delta(part, tail)] if tail else []

    @staticmethod
    def _synthetic_delta(part: SessionPart, text: str) -> bytes:
        t = part.template.get("type")
        field = STREAM_DELTA.get(t, ("", "delta"))[1] if isinstance(t, str) else "delta"
        ev = dict(part.template)
        if "event_id" in ev:
            ev["event_id"] = errors.new_event_id()
        ev[field] = text
        return errors.dumps(ev)

    def _on_done(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        family, field = STREAM_DONE[t]
        rid = self._rid(obj)
        iid = obj.get("item_id") if isinstance(obj.get("item_id"), str) else None
        key = part_key(obj, family)
        if rid and not key[1]:
            key = (key[0], rid, key[2], key[3])
        part = self.state.close_part(key)
        if self.state.is_blocked(rid, iid):
            return DROP
        text = obj.get(field)
        policies, direction = self._policies_for(family)
        if not isinstance(text, str) or not policies:
            return Verdict(data, event_type=t)
        eid = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        if part is None:
            # Nothing was streamed for this part (a transcription that arrives whole): judge it now.
            return self._judge_whole(data, obj, [(obj, field)], policies, direction, t, rid, iid, family)
        tail, out = part.flush(t, eid)
        out = out or Judgement()
        if out.stop is not None:
            return self._stop_output(out, t, rid, iid, family, [])
        msgs = [self._synthetic_delta(part, tail)] if tail else []
        pii = part.pii
        if pii is not None and pii.settings.action == "redact":
            try:
                found = pii.find(text)
            except Exception as exc:  # a policy never crashes a session
                policy_error(out, pii, exc, direction, t, eid)
                if out.stop is not None:
                    return self._stop_output(out, t, rid, iid, family, [])
                found = []
            if found:
                obj[field] = redact(text, found)
                msgs.append(errors.dumps(obj))
                return sequence(msgs, tuple(out.decisions), t)
        if not msgs:
            return Verdict(data, decisions=tuple(out.decisions), event_type=t)
        msgs.append(data)
        return sequence(msgs, tuple(out.decisions), t)

    def _judge_whole(
        self,
        data: bytes,
        obj: dict[str, Any],
        slots: list[Any],
        policies: tuple[TextPolicy, ...],
        direction: Direction,
        t: str,
        rid: str | None,
        iid: str | None,
        family: str,
    ) -> Verdict:
        eid = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        out = judge_texts(slots, policies, direction, t, eid)
        if out.stop is not None:
            return self._stop_output(out, t, rid, iid, family, [])
        forward = errors.dumps(obj) if out.changed else data
        return Verdict(forward, decisions=tuple(out.decisions), event_type=t)

    def _on_whole(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        policies, direction = self._policies_for("input_transcript")
        if not isinstance(obj.get("text"), str) or not policies:
            return Verdict(data, event_type=t)
        rid, iid = self._rid(obj), item_id_of(obj)
        if self.state.is_blocked(rid, iid):
            return DROP
        return self._judge_whole(data, obj, [(obj, "text")], policies, direction, t, rid, iid, "input_transcript")

    def _on_repeat(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        rid = self._rid(obj) if t not in _RESPONSE_END_TYPES else _response_id(obj)
        iid = item_id_of(obj)
        msgs: list[bytes] = []
        if t in _RESPONSE_END_TYPES and rid is not None:
            # Parts whose `.done` never came (an interrupted response): send what they still hold.
            for part in self.state.response_ended(rid):
                msgs.extend(self._flush(part))
        slots = repeat_slots(obj)
        if not slots:
            if msgs:
                msgs.append(data)
                return sequence(msgs, (), t)
            return Verdict(data, event_type=t)
        changed = False
        if self.state.is_blocked(rid, iid):
            # Items of a blocked response are emptied (their text was never delivered).
            for container, key in slots:
                if container[key]:
                    container[key] = ""
                    changed = True
        else:
            # Redaction only, of text already judged as it streamed: the client sees the same
            # redacted text in `response.done` as in the deltas.
            role = _role(obj)
            policies = self.chain.input_text_policies if role == "user" else self.chain.output_policies
            changed = redact_texts(slots, policies)
        if changed:
            msgs.append(errors.dumps(obj))
        elif msgs:
            msgs.append(data)
        else:
            return Verdict(data, event_type=t)
        return sequence(msgs, (), t)

    def _stop_output(
        self, out: Judgement, t: str, rid: str | None, iid: str | None, family: str, extra: list[bytes]
    ) -> Verdict:
        assert out.stop is not None
        action, policy, reason = out.stop
        decisions = tuple(out.decisions)
        if action == "close":
            return Verdict(
                None,
                to_client=tuple(extra),
                close=(1008, close_reason(policy, reason)),
                decisions=decisions,
                event_type=t,
            )
        state = self.state
        to_upstream: list[bytes] = []
        if family in USER_FAMILIES:
            # The user's own (spoken) turn: remove it from the conversation, stop what answers it.
            if iid is not None and not state.item_blocked(iid) and self.protocol == "realtime":
                to_upstream.append(errors.item_delete(iid))
                for active in state.active_responses:
                    to_upstream.append(errors.response_cancel(active))
        elif rid is not None and self.protocol == "realtime" and not state.is_blocked(rid, None):
            to_upstream.append(errors.response_cancel(rid))
        if rid is not None and family not in USER_FAMILIES:
            state.cancel_response(rid)
        if iid is not None:
            state.block_item(iid)
        err = errors.policy_violation(policy, reason, protocol=self.protocol)
        return Verdict(None, to_client=(*extra, err), to_upstream=tuple(to_upstream), decisions=decisions, event_type=t)


def _with_text(data: bytes, obj: dict[str, Any], field: str, old: str, new: str) -> bytes:
    """The event `data` (parsed: `obj`) with its text `field` set to `new`: spliced into the
    original bytes when the event is flat (no object or array members, as deltas are), else
    re-serialised."""
    for v in obj.values():
        if type(v) is dict or type(v) is list:
            break
    else:
        spliced = splice_string(data, field, old, new)
        if spliced is not None:
            return spliced
    obj[field] = new
    return errors.dumps(obj)


def _response_id(obj: dict[str, Any]) -> str | None:
    resp = obj.get("response")
    if isinstance(resp, dict) and isinstance(resp.get("id"), str):
        return resp["id"]  # type: ignore[no-any-return]
    return None


def _role(obj: dict[str, Any]) -> str | None:
    item = obj.get("item")
    if isinstance(item, dict):
        role = item.get("role")
        return role if isinstance(role, str) else None
    return None
