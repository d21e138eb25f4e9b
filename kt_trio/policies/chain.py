"""The policy chain: every message in both directions, judged in `policies.chain` order.

`build_chain` turns config values into a `PolicyChain` once; each session asks it for a
`SessionPolicies`, whose two methods take one WebSocket message and return a `Verdict`: what to
forward, what to send back, what to close, and the `PolicyDecision`s for the session's one
reporting point. No I/O happens here (the sans-IO style of h11 and wsproto): the session owns
the sockets and carries the verdict out.

Cost on the hot path: binary frames and audio (`input_audio_buffer.append`,
`response.output_audio.delta`) are recognised from their first bytes (`protocol.fast.event_type`)
and passed as the same bytes object; events that carry no text are not parsed; a message no
policy changed is forwarded as the bytes that arrived. The two commonest text events have a
byte-level path that gives exactly the parsing path's result: a streamed text/transcript delta
in the GA layout (`_GA_DELTA`; a rewritten delta is the original bytes with the new text spliced
in) and a one-text `conversation.item.create` (`_ITEM_CREATE`; when any text policy has
something to say it goes the parsing way). Other rewritten messages are re-serialised
(compact, UTF-8). tests/test_policies_fastpath.py checks each shortcut against the general path.

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
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from json.decoder import scanstring
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from kt_trio.config.schema import POLICY_SETTINGS, GatewayConfig, PolicySettings
from kt_trio.policies.base import Finding, Quiet, Span, TextView
from kt_trio.policies.bot import BotDetector, BotSession
from kt_trio.policies.pii import PiiDetector, redact
from kt_trio.policies.prompt_injection import PromptInjection
from kt_trio.policies.safety import SafetyFilter
from kt_trio.policies.streaming import StreamScanner
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
    Slot,
    input_slots,
    item_id_of,
    part_key,
    repeat_slots,
)
from kt_trio.protocol.fast import event_type, loads, splice_string
from kt_trio.records import Direction, PolicyDecision

# Policies other issues own; accepted in `policies.chain` and skipped here.
EXTERNAL_POLICIES = frozenset({"audit-logger", "session-budget"})

_FACTORIES: dict[str, Any] = {
    "prompt-injection": PromptInjection,
    "pii-detector": PiiDetector,
    "safety-filter": SafetyFilter,
    "bot-detector": BotDetector,
}

# Open streamed parts per session. A response streams one part per content part (text or audio
# transcript) of each output item, and one transcription per user turn; a few responses at once
# make a handful. 32 is far above that and bounds what an upstream that never sends `.done`
# can make us hold (each part: <= 512 held characters, a 128-character window, one small dict).
MAX_OPEN_PARTS = 32
# How many cancelled responses / blocked items are remembered to drop their stragglers.
_MAX_BLOCKED = 64
# Characters of streamed text kept per part for phrase policies (safety, injection), so a phrase
# split across deltas is read whole. Longer phrases than this are not matched across deltas.
_WINDOW = 128
# Characters before a delta's new text that the safety filter's trigger-word check also reads,
# so a trigger word split across deltas is seen whole (the longest trigger word is 12).
_TRIGGER_CONTEXT = 24
# Close frames carry at most 123 bytes of reason (RFC 6455 §5.5: control payload <= 125).
_MAX_CLOSE_REASON = 120

_RESPONSE_END_TYPES = frozenset({"response.done", "response.completed", "response.incomplete", "response.failed"})
_RESPONSE_START_TYPES = frozenset({"response.created"})


class Verdict(NamedTuple):
    """What the session does with one message.

    `forward` is the message to send on (the very bytes object that arrived when nothing changed)
    or None to drop it. `to_client` messages follow `forward` on the client leg (error events, and
    for output the rest of the messages this one became); `to_upstream` go to the provider.

    A named tuple (immutable, like the attrs class it replaced) because it is built for every
    message: `_verdict` makes one in ~0.15 µs, a frozen attrs instance took ~0.8.
    """

    forward: bytes | None
    to_client: tuple[bytes, ...] = ()
    to_upstream: tuple[bytes, ...] = ()
    close: tuple[int, str] | None = None
    decisions: tuple[PolicyDecision, ...] = ()
    event_type: str | None = None


_tuple_new = tuple.__new__


def _verdict(data: bytes | None, t: str | None, decisions: tuple[PolicyDecision, ...] = ()) -> Verdict:
    """`Verdict(data, decisions=decisions, event_type=t)`, without the keyword handling."""
    return _tuple_new(Verdict, (data, (), (), None, decisions, t))


DROP = Verdict(None)


def build_chain(chain: Sequence[str], settings: Mapping[str, PolicySettings] | None = None) -> PolicyChain:
    """A chain from `policies.chain` (names, in order) and the typed `policy.<name>` settings
    (`GatewayConfig.policy`); a policy without a block gets its schema defaults."""
    settings = settings or {}
    policies: list[Any] = []
    for name in chain:
        if name in EXTERNAL_POLICIES:
            continue
        factory = _FACTORIES.get(name)
        if factory is None:
            known = sorted(set(_FACTORIES) | EXTERNAL_POLICIES)
            raise ValueError(f"policies.chain: unknown policy {name!r} (known: {', '.join(known)})")
        typed = settings.get(name)
        if typed is None:
            typed = POLICY_SETTINGS[name]()
        elif not isinstance(typed, POLICY_SETTINGS[name]):
            raise TypeError(f"policy.{name}: settings must be {POLICY_SETTINGS[name].__name__}, not {typed!r}")
        policies.append(factory(typed))
    return PolicyChain(policies)


def chain_of(config: GatewayConfig) -> PolicyChain:
    """The chain a loaded config runs."""
    return build_chain(config.policies.chain, config.policy)


class PolicyChain:
    """Built once per config; immutable apart from the bot detector's cross-session burst counts."""

    def __init__(self, policies: Sequence[Any]) -> None:
        self.policies = tuple(policies)
        self.input_policies = tuple(p for p in policies if "input" in p.settings.directions)
        self.output_policies = tuple(
            p for p in policies if "output" in p.settings.directions and not isinstance(p, BotDetector)
        )
        self.input_text_policies = tuple(p for p in self.input_policies if not isinstance(p, BotDetector))
        # Where every input text policy states its pre-filters (`quiet`), one check of their union
        # tells that none of them can find anything: the common benign message then costs one
        # check instead of one per policy.
        quiets = [getattr(p, "quiet", None) for p in self.input_text_policies]
        self.input_quiet: Quiet | None = (
            Quiet.union(quiets) if quiets and all(q is not None for q in quiets) else None  # type: ignore[arg-type]
        )
        self.bot = next((p for p in self.input_policies if isinstance(p, BotDetector)), None)

    @property
    def is_empty(self) -> bool:
        return not self.input_policies and not self.output_policies

    def new_session(
        self,
        *,
        session_id: str,
        user_agent: str | None,
        client_ip: str,
        key_id: str | None = None,
        protocol: Protocol = "realtime",
    ) -> SessionPolicies:
        return SessionPolicies(
            self, session_id=session_id, user_agent=user_agent, client_ip=client_ip, key_id=key_id, protocol=protocol
        )


class _Part:
    """State of one streamed content part."""

    __slots__ = ("armed_until", "fired", "pos", "scanner", "template", "window")

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.scanner: StreamScanner | None = None
        self.window = ""
        self.fired: set[str] | None = None
        self.pos = 0  # characters of this part seen so far
        self.armed_until = -1  # the safety filter reads the window while pos <= this


class _Outcome:
    """What running the policies over some text slots concluded (internal to the chain)."""

    __slots__ = ("changed", "decisions", "stop")

    def __init__(self) -> None:
        self.decisions: list[PolicyDecision] = []
        self.changed = False
        self.stop: tuple[str, str, str] | None = None  # (action block|close, policy, reason)


class SessionPolicies:
    """Per-session policy state: streamed parts, cancelled responses, bot cadence."""

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
        self._parts: OrderedDict[tuple[str, str, str, int], _Part] = OrderedDict()
        # Blocked response id -> the bytes its audio deltas carry, made once: every later audio
        # delta is checked against them.
        self._blocked_responses: OrderedDict[str, bytes] = OrderedDict()
        self._blocked_items: OrderedDict[str, None] = OrderedDict()
        self._active_responses: OrderedDict[str, None] = OrderedDict()
        self._current_response: str | None = None  # Responses mode: deltas carry no response_id
        # The bot detector reads the text of text events too (repeated messages).
        self._input_needs_parse = bool(chain.input_text_policies) or chain.bot is not None

    # ------------------------------------------------------------------ client → provider

    def on_client_message(self, data: bytes, is_text: bool, now: float, sniffed: str | None = None) -> Verdict:
        """`sniffed`: the type the caller already sniffed from these bytes (`event_type`), so the
        per-message sniff is not done twice; None: sniffed here."""
        if not is_text:
            return _verdict(data, None)
        t = sniffed if sniffed is not None else event_type(data)
        if t in AUDIO_TYPES:
            return _verdict(data, t)
        bot = self._bot
        if t is not None and (t not in INPUT_TEXT_TYPES or not self._input_needs_parse):
            if bot is None:
                return _verdict(data, t)
            return self._bot_only(data, t, now)
        if t == "conversation.item.create":
            v = self._fast_item_create(data, t, now)
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
        slots = input_slots(obj) if self._input_needs_parse else []
        out = _Outcome()
        if slots:
            self._judge(out, slots, self.chain.input_text_policies, "input", t, eid)
        if out.stop is None and bot is not None:
            if not slots:
                text = None
            elif len(slots) == 1:
                text = slots[0][0][slots[0][1]]
            else:
                text = "\n".join(c[k] for c, k in slots)
            self._judge_bot(out, now, text, t, eid)
        if out.stop is not None:
            return self._stop_input(out, t, eid)
        forward = errors.dumps(obj) if out.changed else data
        return _verdict(forward, t, tuple(out.decisions) if out.decisions else ())

    def _fast_item_create(self, data: bytes, t: str, now: float) -> Verdict | None:
        """A one-text `conversation.item.create` in the common layout (`_ITEM_CREATE`), judged
        without parsing it. Only the outcome "nothing fired" is decided here (then the bot
        detector runs, as on the parsing path); if any text policy has something to say (or
        the message is not in that layout or does not decode), None: the caller takes the
        parsing path, which judges the same text again (text policies are pure) and does
        everything else as before."""
        try:
            raw = data.decode("utf-8", "surrogatepass")  # one decode for the match and the text
        except UnicodeDecodeError:
            return None
        m = _ITEM_CREATE.match(raw)
        if m is None:
            return None
        text = _final_str(raw, m.end(), "}]}}")
        if text is None:
            return None
        eid = m.group(1)
        out = _Outcome()
        view = TextView(text)
        quiet = self.chain.input_quiet
        if quiet is None or not view.is_quiet(quiet):
            self._judge(out, [([text], 0)], self.chain.input_text_policies, "input", t, eid, view)
            if out.decisions or out.changed or out.stop is not None:
                return None
        if self._bot is not None:
            self._judge_bot(out, now, text, t, eid)
            if out.stop is not None:
                return self._stop_input(out, t, eid)
            if out.decisions:
                return _verdict(data, t, tuple(out.decisions))
        return _verdict(data, t)

    def _bot_only(self, data: bytes, t: str, now: float) -> Verdict:
        out = _Outcome()
        self._judge_bot(out, now, None, t, None)
        if out.stop is not None:
            return self._stop_input(out, t, None)
        if out.decisions:
            return _verdict(data, t, tuple(out.decisions))
        return _verdict(data, t)

    def _judge_bot(self, out: _Outcome, now: float, text: str | None, t: str, eid: str | None) -> None:
        bot = self._bot
        det = self.chain.bot
        assert bot is not None and det is not None
        try:
            finding = bot.observe(now, text)
        except Exception as exc:  # a policy never crashes a session
            self._policy_error(out, det, exc, "input", t, eid)
            return
        if finding is None:
            return
        action = det.settings.action
        if action == "flag" or action == "allow" or action == "redact":
            if bot.new:
                out.decisions.append(policy_decision(det.name, "flag", "input", finding, t, eid))
            return
        out.decisions.append(policy_decision(det.name, action, "input", finding, t, eid))
        out.stop = (action, det.name, finding.reason)

    def _stop_input(self, out: _Outcome, t: str | None, eid: str | None) -> Verdict:
        assert out.stop is not None
        action, policy, reason = out.stop
        if action == "close":
            return Verdict(
                None, close=(1008, _close_reason(policy, reason)), decisions=tuple(out.decisions), event_type=t
            )
        err = errors.policy_violation(policy, reason, client_event_id=eid, protocol=self.protocol)
        return Verdict(None, to_client=(err,), decisions=tuple(out.decisions), event_type=t)

    # ------------------------------------------------------------------ shared judging

    def _policy_error(
        self, out: _Outcome, policy: Any, exc: Exception, direction: Direction, t: str | None, eid: str | None
    ) -> None:
        on_error = policy.settings.on_error
        reason = f"policy error ({type(exc).__name__}); on_error={on_error}"
        out.decisions.append(
            PolicyDecision(
                policy=policy.name,
                action="block" if on_error == "block" else "allow",
                direction=direction,
                reason=reason,
                event_type=t,
                event_id=eid,
            )
        )
        if on_error == "block":
            out.stop = ("block", policy.name, f"The {policy.name} policy could not check this message.")

    def _judge(
        self,
        out: _Outcome,
        slots: list[Slot],
        policies: Sequence[Any],
        direction: Direction,
        t: str | None,
        eid: str | None,
        view: TextView | None = None,
    ) -> None:
        """Run `policies` in order over whole texts; redactions rewrite the slots in place.
        `view`: a `TextView` of the one slot's text, when the caller has one."""
        for pol in policies:
            try:
                if isinstance(pol, PiiDetector):
                    if view is None and len(slots) == 1:
                        view = TextView(slots[0][0][slots[0][1]])
                    found: list[tuple[Slot, list[Span]]] = []
                    for slot in slots:
                        spans = pol.find(slot[0][slot[1]], view)
                        if spans:
                            found.append((slot, spans))
                    if not found:
                        continue
                    finding = pii_finding(s for _, spans in found for s in spans)
                    action = pol.settings.action
                    if action == "redact":
                        for (container, key), spans in found:
                            container[key] = redact(container[key], spans)
                        out.changed = True
                        view = None
                else:
                    if view is None:
                        view = TextView(
                            slots[0][0][slots[0][1]] if len(slots) == 1 else "\n".join(c[k] for c, k in slots)
                        )
                    finding = pol.inspect(view)
                    if finding is None:
                        continue
                    action = pol.settings.action
                    if action == "redact":  # nothing to redact for a score: treat as block
                        action = "block"
            except Exception as exc:  # a policy never crashes a session
                self._policy_error(out, pol, exc, direction, t, eid)
                if out.stop is not None:
                    return
                continue
            if action == "allow":
                continue
            out.decisions.append(policy_decision(pol.name, action, direction, finding, t, eid))
            if action in ("block", "close"):
                out.stop = (action, pol.name, finding.reason)
                return

    # ------------------------------------------------------------------ provider → client

    def on_upstream_message(self, data: bytes, is_text: bool, now: float, sniffed: str | None = None) -> Verdict:
        """`sniffed` as for `on_client_message`."""
        if not is_text:
            return _verdict(data, None)
        t = sniffed if sniffed is not None else event_type(data)
        if t in AUDIO_TYPES:
            if self._blocked_responses and self._audio_of_blocked(data):
                return DROP
            return _verdict(data, t)
        if t is not None and t not in _OUTPUT_INTERESTING:
            return _verdict(data, t)
        if t in _GA_DELTA_TYPES:
            v = self._fast_delta(data, t)
            if v is not None:
                return v
        try:
            obj = loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return Verdict(data, event_type=t)  # the provider's bytes are not ours to refuse
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            return Verdict(data, event_type=t)
        t = obj["type"]
        if t in STREAM_DELTA:
            return self._on_delta(data, obj, t)
        if t in STREAM_DONE:
            return self._on_done(data, obj, t)
        if t in _RESPONSE_START_TYPES:
            self._response_started(obj)
            return Verdict(data, event_type=t)
        if t in ORIGINAL_WHOLE_TYPES:
            return self._on_whole(data, obj, t)
        if t in REPEAT_TYPES:
            return self._on_repeat(data, obj, t)
        return Verdict(data, event_type=t)

    def audio_of_cancelled(self, head: bytes | bytearray | memoryview) -> bool:
        """Whether an output audio delta, by its first bytes, belongs to a response a policy
        cancelled (the session should drop it). False at once while nothing was cancelled, so a
        session that short-cuts audio past `on_upstream_message` can ask this instead."""
        return bool(self._blocked_responses) and self._audio_of_blocked(bytes(head[:512]))

    def _audio_of_blocked(self, data: bytes) -> bool:
        head = data[:512]
        return any(needle in head for needle in self._blocked_responses.values())

    def _rid(self, obj: dict[str, Any]) -> str | None:
        rid = obj.get("response_id")
        if isinstance(rid, str):
            return rid
        return self._current_response if self.protocol == "responses" else None

    def _response_started(self, obj: dict[str, Any]) -> None:
        resp = obj.get("response")
        if isinstance(resp, dict) and isinstance(resp.get("id"), str):
            _bounded_add(self._active_responses, resp["id"])
            self._current_response = resp["id"]

    def _is_blocked(self, rid: str | None, iid: str | None) -> bool:
        return (rid is not None and rid in self._blocked_responses) or (iid is not None and iid in self._blocked_items)

    def _policies_for(self, family: str) -> tuple[tuple[Any, ...], Direction]:
        if family in USER_FAMILIES:
            return self.chain.input_text_policies, "input"
        return self.chain.output_policies, "output"

    def _on_delta(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        family, field = STREAM_DELTA[t]
        delta = obj.get(field)
        if not isinstance(delta, str):
            return _verdict(data, t)
        rid = self._rid(obj)
        iid = obj.get("item_id")
        if not isinstance(iid, str):
            iid = None
        if (self._blocked_responses or self._blocked_items) and self._is_blocked(rid, iid):
            return DROP
        policies, direction = self._policies_for(family)
        if not policies:
            return _verdict(data, t)
        key = part_key(obj, family)
        if rid and not key[1]:
            key = (key[0], rid, key[2], key[3])
        return self._delta(data, t, field, delta, rid, iid, key, policies, direction, obj, _event_id(obj), None)

    def _fast_delta(self, data: bytes, t: str) -> Verdict | None:
        """A delta in the GA layout (`_GA_DELTA`), judged without parsing it: the same as
        `_on_delta` on the parsed event. None when it is not in that layout or its text does
        not decode (the caller then takes the parsing path, which decides)."""
        try:
            # One decode serves the layout match, the ids and the text (the match covers only
            # ASCII, so its offsets are byte offsets as well).
            text = data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
        m = _GA_DELTA.match(text)
        if m is None:
            return None
        start = m.end()
        delta = _final_str(text, start, "}")
        if delta is None:
            return None
        eid, rid, iid, index = m.group(1, 2, 3, 4)
        if (self._blocked_responses or self._blocked_items) and self._is_blocked(rid, iid):
            return DROP
        family, field = STREAM_DELTA[t]
        policies, direction = self._policies_for(family)
        if not policies:
            return _verdict(data, t)
        key = (family, rid, iid, int(index))
        return self._delta(data, t, field, delta, rid, iid, key, policies, direction, None, eid, start)

    def _delta(
        self,
        data: bytes,
        t: str,
        field: str,
        delta: str,
        rid: str | None,
        iid: str | None,
        key: tuple[str, str, str, int],
        policies: tuple[Any, ...],
        direction: Direction,
        obj: dict[str, Any] | None,
        eid: str | None,
        start: int | None,
    ) -> Verdict:
        """One streamed delta through the policies. `obj` is the parsed event (None on the
        byte-level path, which passes `start`, where the text's characters begin in `data`; the
        text's closing quote and `}` end the message)."""
        family = key[0]
        extra: list[bytes] | None = None
        part = self._parts.get(key)
        if part is None:
            if len(self._parts) >= MAX_OPEN_PARTS:
                extra = self._evict_oldest()
            if obj is None:
                obj = loads(data)
            part = _Part({k: v for k, v in obj.items() if k != field})
            self._parts[key] = part
        out: _Outcome | None = None
        emit = delta
        pos = part.pos
        end = pos + len(delta)
        window = part.window + delta
        view: TextView | None = None
        for pol in policies:
            try:
                if isinstance(pol, PiiDetector):
                    if part.scanner is None:
                        part.scanner = StreamScanner(pol)
                    emit, spans = part.scanner.feed(delta)
                    if not spans:
                        continue
                    finding = pii_finding(spans)
                    action = pol.settings.action
                    if action == "redact":
                        emit = redact(emit, spans)
                else:
                    if isinstance(pol, SafetyFilter):
                        # Only read the window while a trigger word can be in it: one arrived
                        # (judged on the new text and a little context before it, so a word
                        # split across deltas is seen whole) no more than _WINDOW characters ago.
                        if pol.may_match_text(window[-(len(delta) + _TRIGGER_CONTEXT) :]):
                            part.armed_until = end + _WINDOW
                        if pos > part.armed_until:
                            continue
                        if view is None:
                            view = TextView(window)
                        finding = pol.inspect(view, new_from=len(part.window))
                    else:
                        if part.fired is not None and pol.name in part.fired:
                            continue
                        if view is None:
                            view = TextView(window)
                        finding = pol.inspect(view)
                    if finding is None:
                        continue
                    if part.fired is None:
                        part.fired = set()
                    part.fired.add(pol.name)
                    action = pol.settings.action
                    if action == "redact":
                        action = "block"
            except Exception as exc:  # a policy never crashes a session
                if out is None:
                    out = _Outcome()
                self._policy_error(out, pol, exc, direction, t, eid)
                if out.stop is not None:
                    break
                continue
            if action == "allow":
                continue
            if out is None:
                out = _Outcome()
            out.decisions.append(policy_decision(pol.name, action, direction, finding, t, eid))
            if action in ("block", "close"):
                out.stop = (action, pol.name, finding.reason)
                break
        part.window = window[-_WINDOW:] if len(window) > _WINDOW else window
        part.pos = end
        if out is not None and out.stop is not None:
            return self._stop_output(out, t, rid, iid, family, extra or [])
        decisions = tuple(out.decisions) if out is not None else ()
        if emit == delta and not extra:
            return _verdict(data, t, decisions)
        if emit and start is not None and not extra:
            # The common rewrite (part of the text held back, or redacted): one message.
            return _verdict(b"".join((data[: start - 1], encode_basestring(emit).encode("utf-8"), b"}")), t, decisions)
        msgs = extra or []
        if emit:
            if start is not None:
                msgs.append(b"".join((data[: start - 1], encode_basestring(emit).encode("utf-8"), b"}")))
            else:
                assert obj is not None
                msgs.append(self._with_text(data, obj, field, delta, emit))
        return _sequence(msgs, decisions, t)

    @staticmethod
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

    def _evict_oldest(self) -> list[bytes]:
        _, part = self._parts.popitem(last=False)
        return self._flush_part(part)[0]

    def _flush_part(self, part: _Part) -> tuple[list[bytes], list[Span]]:
        """Synthetic delta carrying a part's held tail (redacted when the action says so)."""
        if part.scanner is None:
            return [], []
        tail, spans = part.scanner.flush()
        if not tail:
            return [], spans
        pii = part.scanner._pii
        text = redact(tail, spans) if spans and pii.settings.action == "redact" else tail
        t = part.template.get("type")
        field = STREAM_DELTA.get(t, ("", "delta"))[1] if isinstance(t, str) else "delta"
        ev = dict(part.template)
        if "event_id" in ev:
            ev["event_id"] = errors.new_event_id()
        ev[field] = text
        return [errors.dumps(ev)], spans

    def _on_done(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        family, field = STREAM_DONE[t]
        rid = self._rid(obj)
        iid = obj.get("item_id") if isinstance(obj.get("item_id"), str) else None
        key = part_key(obj, family)
        if rid and not key[1]:
            key = (key[0], rid, key[2], key[3])
        part = self._parts.pop(key, None)
        if self._is_blocked(rid, iid):
            return DROP
        text = obj.get(field)
        policies, direction = self._policies_for(family)
        if not isinstance(text, str) or not policies:
            return Verdict(data, event_type=t)
        eid = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        out = _Outcome()
        if part is None:
            # Nothing was streamed for this part (a transcription that arrives whole): judge it now.
            self._judge(out, [(obj, field)], policies, direction, t, eid)
            if out.stop is not None:
                return self._stop_output(out, t, rid, iid, family, [])
            if out.changed:
                return Verdict(errors.dumps(obj), decisions=tuple(out.decisions), event_type=t)
            return Verdict(data, decisions=tuple(out.decisions), event_type=t)
        msgs, spans = self._flush_part(part)
        pii = part.scanner._pii if part.scanner is not None else None
        if spans and pii is not None:
            finding = pii_finding(spans)
            action = pii.settings.action
            if action != "allow":
                out.decisions.append(policy_decision(pii.name, action, direction, finding, t, eid))
            if action in ("block", "close"):
                out.stop = (action, pii.name, finding.reason)
                return self._stop_output(out, t, rid, iid, family, [])
        if pii is not None and pii.settings.action == "redact":
            try:
                found = pii.find(text)
            except Exception as exc:  # a policy never crashes a session
                self._policy_error(out, pii, exc, direction, t, eid)
                if out.stop is not None:
                    return self._stop_output(out, t, rid, iid, family, [])
                found = []
            if found:
                obj[field] = redact(text, found)
                msgs.append(errors.dumps(obj))
                return _sequence(msgs, tuple(out.decisions), t)
        if not msgs:
            return Verdict(data, decisions=tuple(out.decisions), event_type=t)
        msgs.append(data)
        return _sequence(msgs, tuple(out.decisions), t)

    def _on_whole(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        policies, direction = self._policies_for("input_transcript")
        slots = [(obj, "text")] if isinstance(obj.get("text"), str) else []
        if not slots or not policies:
            return Verdict(data, event_type=t)
        rid, iid = self._rid(obj), item_id_of(obj)
        if self._is_blocked(rid, iid):
            return DROP
        eid = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        out = _Outcome()
        self._judge(out, slots, policies, direction, t, eid)
        if out.stop is not None:
            return self._stop_output(out, t, rid, iid, "input_transcript", [])
        if out.changed:
            return Verdict(errors.dumps(obj), decisions=tuple(out.decisions), event_type=t)
        return Verdict(data, decisions=tuple(out.decisions), event_type=t)

    def _on_repeat(self, data: bytes, obj: dict[str, Any], t: str) -> Verdict:
        rid = self._rid(obj) if t not in _RESPONSE_END_TYPES else _response_id(obj)
        iid = item_id_of(obj)
        msgs: list[bytes] = []
        if t in _RESPONSE_END_TYPES and rid is not None:
            # Parts whose `.done` never came (an interrupted response): send what they still hold.
            for key in [k for k in self._parts if k[1] == rid]:
                msgs.extend(self._flush_part(self._parts.pop(key))[0])
            self._active_responses.pop(rid, None)
        slots = repeat_slots(obj)
        if not slots:
            if msgs:
                msgs.append(data)
                return _sequence(msgs, (), t)
            return Verdict(data, event_type=t)
        changed = False
        if self._is_blocked(rid, iid):
            for container, key in slots:
                if container[key]:
                    container[key] = ""
                    changed = True
        else:
            changed = self._redact_repeat(obj, slots, rid)
        if changed:
            msgs.append(errors.dumps(obj))
        elif msgs:
            msgs.append(data)
        else:
            return Verdict(data, event_type=t)
        return _sequence(msgs, (), t)

    def _redact_repeat(self, obj: dict[str, Any], slots: list[Slot], rid: str | None) -> bool:
        """Apply redaction (only) to text that was already judged when it streamed, so the client
        sees the same redacted text in `response.done` as in the deltas. Items of a blocked
        response are emptied instead (their text was never delivered)."""
        changed = False
        role = _role(obj)
        policies = self.chain.input_text_policies if role == "user" else self.chain.output_policies
        for pol in policies:
            if not isinstance(pol, PiiDetector) or pol.settings.action != "redact":
                continue
            for container, key in slots:
                try:
                    spans = pol.find(container[key])
                except Exception:  # fail closed: the text of a repeat is not needed to go on
                    container[key] = ""
                    changed = True
                    continue
                if spans:
                    container[key] = redact(container[key], spans)
                    changed = True
        return changed

    def _stop_output(
        self, out: _Outcome, t: str, rid: str | None, iid: str | None, family: str, extra: list[bytes]
    ) -> Verdict:
        assert out.stop is not None
        action, policy, reason = out.stop
        decisions = tuple(out.decisions)
        if action == "close":
            return Verdict(
                None,
                to_client=tuple(extra),
                close=(1008, _close_reason(policy, reason)),
                decisions=decisions,
                event_type=t,
            )
        to_upstream: list[bytes] = []
        if family in USER_FAMILIES:
            # The user's own (spoken) turn: remove it from the conversation, stop what answers it.
            if iid is not None and iid not in self._blocked_items and self.protocol == "realtime":
                to_upstream.append(errors.item_delete(iid))
                for active in self._active_responses:
                    to_upstream.append(errors.response_cancel(active))
        elif rid is not None and rid not in self._blocked_responses and self.protocol == "realtime":
            to_upstream.append(errors.response_cancel(rid))
        if rid is not None and family not in USER_FAMILIES:
            _bounded_add(self._blocked_responses, rid, f'"response_id":"{rid}"'.encode())
            for key in [k for k in self._parts if k[1] == rid]:
                del self._parts[key]
        if iid is not None:
            _bounded_add(self._blocked_items, iid)
            for key in [k for k in self._parts if k[2] == iid]:
                del self._parts[key]
        err = errors.policy_violation(policy, reason, protocol=self.protocol)
        return Verdict(None, to_client=(*extra, err), to_upstream=tuple(to_upstream), decisions=decisions, event_type=t)


_OUTPUT_INTERESTING = OUTPUT_TEXT_TYPES | _RESPONSE_START_TYPES


def _sequence(msgs: list[bytes], decisions: tuple[PolicyDecision, ...], t: str | None) -> Verdict:
    if not msgs:
        return Verdict(None, decisions=decisions, event_type=t)
    return Verdict(msgs[0], to_client=tuple(msgs[1:]), decisions=decisions, event_type=t)


# A text or transcript delta as the Realtime GA (and beta) server sends it: these members in this
# order, compact or with `json.dumps`' single spaces, ids of printable ASCII without quote or
# backslash, JSON integers, and the text a valid JSON string (no raw control characters, valid
# escapes; `_GA_DELTA` matches up to the text's opening quote, `_final_str` checks the rest).
# Such a message parses to exactly these seven members, so the chain can judge it from the match
# alone and rewrite the text in place. Anything else (other layouts, other
# whitespace, Responses-mode deltas) is parsed.
_GA_DELTA_TYPES = frozenset(
    {
        "response.output_text.delta",
        "response.text.delta",
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
    }
)
_SP = rb" ?"
_ID = rb"([\x20\x21\x23-\x5b\x5d-\x7e]*)"
_INT = rb"(?:0|[1-9][0-9]{0,17})"
_TYPES_ALT = b"|".join(re.escape(x.encode("ascii")) for x in sorted(_GA_DELTA_TYPES))


def _member(key: bytes, value: bytes) -> bytes:
    return rb'"' + key + rb'":' + _SP + value


def _optional(pattern: bytes) -> bytes:
    return rb"(?:" + pattern + rb")?"


# Matched on the decoded message (str), see `_fast_delta`.
_GA_DELTA = re.compile(
    (
        rb"\{"
        + (rb"," + _SP).join(
            [
                _member(b"type", rb'"(?:' + _TYPES_ALT + rb')"'),
                _member(b"event_id", rb'"' + _ID + rb'"'),
                _member(b"response_id", rb'"' + _ID + rb'"'),
                _member(b"item_id", rb'"' + _ID + rb'"'),
                _member(b"output_index", _INT),
                _member(b"content_index", rb"(" + _INT + rb")"),
                _member(b"delta", rb'"'),
            ]
        )
    ).decode("ascii")
)


# A `conversation.item.create` carrying one text part, as SDKs and the docs write it: compact or
# with `json.dumps`' single spaces, an optional `event_id` and `previous_item_id`, a message item
# (optionally with its `id`) whose `content` is one part with a `type` and a `text`. Such a
# message has exactly one text slot (`events.input_slots`): that part's `text`.
_C = rb"," + _SP
_ANY_ID = rb'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'
# Matched on the decoded message (str), like `_GA_DELTA`.
_ITEM_CREATE = re.compile(
    (
        rb"\{"
        + _member(b"type", rb'"conversation\.item\.create"')
        + _optional(_C + _member(b"event_id", rb'"' + _ID + rb'"'))
        + _optional(_C + _member(b"previous_item_id", rb"(?:null|" + _ANY_ID + rb")"))
        + _C
        + _member(b"item", rb"\{")
        + _optional(_member(b"id", _ANY_ID) + _C)
        + _C.join(
            [
                _member(b"type", rb'"message"'),
                _member(b"role", rb'"[a-z]{1,16}"'),
                _member(b"content", rb"\[\{") + _member(b"type", rb'"[a-z_]{1,32}"') + _C + _member(b"text", rb'"'),
            ]
        )
    ).decode("ascii")
)


def _final_str(text: str, start: int, suffix: str) -> str | None:
    """The JSON string whose characters begin at `start` when it is the message's last value:
    its closing quote followed by exactly `suffix` and nothing else. None when the message does
    not end so or that is not one valid JSON string (`scanstring`, strict like `json.loads`,
    must stop at exactly that quote: an unescaped quote, a raw control character or a bad
    escape inside all make it refuse)."""
    if not text.endswith(suffix):
        return None
    try:
        value, end = scanstring(text, start)
    except ValueError:
        return None
    return value if end == len(text) - len(suffix) else None


def _event_id(obj: dict[str, Any]) -> str | None:
    eid = obj.get("event_id")
    return eid if isinstance(eid, str) else None


def pii_finding(spans: Iterable[Span]) -> Finding:
    """The finding of PII matches: the kinds found, never the matched values."""
    kinds = tuple(sorted({s.kind for s in spans}))
    return Finding(reason=f"PII detected: {', '.join(kinds)}", kinds=kinds)


def policy_decision(
    policy: str, action: Any, direction: Direction, finding: Finding, t: str | None = None, eid: str | None = None
) -> PolicyDecision:
    """The record of one policy's decision on one message (sessions and chat alike)."""
    return PolicyDecision(
        policy=policy,
        action=action,
        direction=direction,
        reason=finding.reason,
        score=finding.score,
        redacted_kinds=finding.kinds if action == "redact" else (),
        event_type=t,
        event_id=eid,
    )


def _bounded_add(d: OrderedDict[str, Any], key: str, value: Any = None) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > _MAX_BLOCKED:
        d.popitem(last=False)


def _response_id(obj: dict[str, Any]) -> str | None:
    resp = obj.get("response")
    if isinstance(resp, dict) and isinstance(resp.get("id"), str):
        return resp["id"]
    return None


def _role(obj: dict[str, Any]) -> str | None:
    item = obj.get("item")
    if isinstance(item, dict):
        role = item.get("role")
        return role if isinstance(role, str) else None
    return None


def _close_reason(policy: str, reason: str) -> str:
    text = f"policy {policy}: {reason}"
    raw = text.encode("utf-8")
    if len(raw) <= _MAX_CLOSE_REASON:
        return text
    return raw[: _MAX_CLOSE_REASON - 3].decode("utf-8", "ignore") + "..."
