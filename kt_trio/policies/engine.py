"""The judging engine: the one place where policies are asked about text, for every front door.

Realtime and Responses WebSocket sessions (`kt_trio.policies.session`), chat completions
(`kt_trio.chat.policy`), `/v1/responses` over HTTP and `/v1/embeddings` are thin adapters: they
find the texts in their own shapes, hand them here, and turn what comes back into their own
events or HTTP answers. No I/O, no trio, no store: pure code over `str`.

Public API
----------

    from kt_trio.policies.chain import chain_of            # PolicyChain, built once per config
    from kt_trio.policies.engine import Blocked, StreamPart, judge_texts

    chain = chain_of(config)

Whole texts (a request body, a non-streamed answer, each embeddings input)::

    # slots: (container, key) pairs with container[key] a str; redaction rewrites them in place
    j = judge_texts(slots, chain.input_text_policies, "input", event_type="response.create")
    j.decisions   # list[PolicyDecision]: hand each to the one reporting point (audit, events)
    j.changed     # a slot was rewritten: re-serialise the body
    j.stop        # None, or Stop(action "block" | "close", policy, reason)
    j.raise_if_stopped()   # or: raises Blocked(stop), for code that prefers exceptions

Streamed text (one `StreamPart` per stream: a content part, one tool call's arguments)::

    part = StreamPart(chain.output_policies, "output")
    text, j = part.feed(delta, event_type, event_id)   # what may go to the client now, redacted
    tail, j = part.flush(event_type, event_id)         # the stream ended: what is still held
    # j is None when nothing was decided; else check j.stop as above. After a stop send nothing
    # more of that stream.

`StreamPart` holds back only the tail that could still grow into PII (split-safe redaction,
`kt_trio.policies.streaming`), lets phrase policies re-read a `WINDOW` of recent text so a
phrase split across deltas is seen whole, and reports each scoring policy once per stream.
Subclass it and override `read`/`release` for a stream whose raw text differs from what the
policies should read (chat's tool-call arguments: JSON escapes masked). An adapter bounds how
many parts it keeps open (`MAX_OPEN_PARTS` for sessions); evicting one is `flush(judge=False)`.

The one error path: a policy that raises is recorded as a decision (`policy error (<Type>);
on_error=...`) and, with `on_error: block`, stops the message like a block. An adapter turns a
`Stop` into its own shape: `kt_trio.protocol.errors.policy_violation` for WebSocket events, a
1008 close for `close`, the OpenAI-shaped 400 body for HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, TypeAlias

from kt_trio.policies.base import Finding, Span, TextView
from kt_trio.policies.bot import BotDetector, BotSession
from kt_trio.policies.pii import PiiDetector, redact
from kt_trio.policies.prompt_injection import PromptInjection
from kt_trio.policies.safety import SafetyFilter
from kt_trio.policies.streaming import StreamScanner
from kt_trio.records import Action, Direction, PolicyDecision

TextPolicy: TypeAlias = PiiDetector | PromptInjection | SafetyFilter
"""A policy that judges text (the bot detector judges a session's behaviour, see `judge_bot`)."""

Slot: TypeAlias = tuple[Any, Any]
"""`(container, key)` with `container[key]` a `str`; a redaction writes the new text there."""

# Characters of streamed text kept per stream for phrase policies (safety, injection), so a phrase
# split across deltas is read whole. Longer phrases than this are not matched across deltas.
WINDOW = 128
# Characters before a delta's new text that the safety filter's trigger-word check also reads,
# so a trigger word split across deltas is seen whole (the longest trigger word is 12).
TRIGGER_CONTEXT = 24


class Stop(NamedTuple):
    """A policy stopped the message: `action` is block (refuse it) or close (end the session)."""

    action: str
    policy: str
    reason: str


class Blocked(Exception):
    """`Judgement.raise_if_stopped`'s exception: `policy` and `reason` go into the error body."""

    def __init__(self, policy: str, reason: str, action: str = "block") -> None:
        super().__init__(reason)
        self.policy = policy
        self.reason = reason
        self.action = action


class Judgement:
    """What judging some text concluded: decisions to report, whether a slot changed, a stop."""

    __slots__ = ("changed", "decisions", "stop")

    def __init__(self, decisions: list[PolicyDecision] | None = None) -> None:
        self.decisions: list[PolicyDecision] = decisions if decisions is not None else []
        self.changed = False
        self.stop: Stop | None = None

    def raise_if_stopped(self) -> None:
        if self.stop is not None:
            raise Blocked(self.stop.policy, self.stop.reason, self.stop.action)


def pii_finding(spans: Iterable[Span]) -> Finding:
    """The finding of PII matches: the kinds found, never the matched values."""
    kinds = tuple(sorted({s.kind for s in spans}))
    return Finding(reason=f"PII detected: {', '.join(kinds)}", kinds=kinds)


def policy_decision(
    policy: str, action: Action, direction: Direction, finding: Finding, t: str | None = None, eid: str | None = None
) -> PolicyDecision:
    """The record of one policy's decision on one message (every front door alike)."""
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


def policy_error(
    out: Judgement,
    policy: TextPolicy | BotDetector,
    exc: Exception,
    direction: Direction,
    t: str | None,
    eid: str | None,
    *,
    can_block: bool = True,
) -> None:
    """A policy raised: recorded as a decision; with `on_error: block` the message stops."""
    on_error = policy.settings.on_error
    blocks = on_error == "block" and can_block
    out.decisions.append(
        PolicyDecision(
            policy=policy.name,
            action="block" if blocks else "allow",
            direction=direction,
            reason=f"policy error ({type(exc).__name__}); on_error={on_error}",
            event_type=t,
            event_id=eid,
        )
    )
    if blocks:
        out.stop = Stop("block", policy.name, f"The {policy.name} policy could not check this message.")


def _decide(
    out: Judgement, policy: str, action: Action, direction: Direction, finding: Finding, t: str | None, eid: str | None
) -> bool:
    """Record `action` (unless allow); True when it stops the message."""
    if action == "allow":
        return False
    out.decisions.append(policy_decision(policy, action, direction, finding, t, eid))
    if action == "block" or action == "close":
        out.stop = Stop(action, policy, finding.reason)
        return True
    return False


def judge_texts(
    slots: Sequence[Slot],
    policies: Sequence[TextPolicy],
    direction: Direction,
    t: str | None = None,
    eid: str | None = None,
    *,
    view: TextView | None = None,
    into: Judgement | None = None,
) -> Judgement:
    """Run `policies` in order over whole texts; a redaction rewrites its slot in place, so the
    next policy reads the redacted text. Scoring policies read all slots joined by newlines.
    `view`: a `TextView` of the one slot's text, when the caller has one. Stops at the first
    block or close (`Judgement.stop`)."""
    out = into if into is not None else Judgement()
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
                    view = TextView(slots[0][0][slots[0][1]] if len(slots) == 1 else "\n".join(c[k] for c, k in slots))
                scored = pol.inspect(view)
                if scored is None:
                    continue
                finding = scored
                action = pol.settings.action
                if action == "redact":  # nothing to redact for a score: treat as block
                    action = "block"
        except Exception as exc:  # a policy never crashes a session or a request
            policy_error(out, pol, exc, direction, t, eid)
            if out.stop is not None:
                return out
            continue
        if _decide(out, pol.name, action, direction, finding, t, eid):
            return out
    return out


def redact_texts(slots: Sequence[Slot], policies: Sequence[TextPolicy]) -> bool:
    """Only the redaction of `policies` over texts already judged (a response's repeat of what
    streamed), so the client sees the same redacted text everywhere. Fails closed: a text the
    redactor cannot read is emptied. True when a slot changed."""
    changed = False
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


def judge_bot(
    out: Judgement | None, bot: BotSession, now: float, text: str | None, t: str | None, eid: str | None
) -> Judgement | None:
    """The bot detector over one client message (its text, when it has one): `flag` is recorded
    when the set of signals changes, `block`/`close` stop the message while the score is over.
    Returns `out`, made here when None and the detector has something to say."""
    det = bot.detector
    try:
        finding = bot.observe(now, text)
    except Exception as exc:  # a policy never crashes a session
        out = out if out is not None else Judgement()
        policy_error(out, det, exc, "input", t, eid)
        return out
    if finding is None:
        return out
    action = det.settings.action
    if action == "flag" or action == "allow" or action == "redact":
        if bot.new:
            out = out if out is not None else Judgement()
            out.decisions.append(policy_decision(det.name, "flag", "input", finding, t, eid))
        return out
    out = out if out is not None else Judgement()
    _decide(out, det.name, action, "input", finding, t, eid)
    return out


_PII, _SAFETY, _SCORER = 0, 1, 2  # the kinds of `StreamPart.plan`


class StreamPart:
    """One text stream through the policies (see the module docstring)."""

    # Whether `read`/`release` are overridden (a subclass that masks sets it): the plain stream
    # skips both calls on the hot path.
    masks = False

    __slots__ = (
        "armed_until", "direction", "fired", "keep", "kept", "pii", "plan", "policies", "pos", "scanner", "window",
    )  # fmt: skip

    def __init__(self, policies: Sequence[TextPolicy], direction: Direction, *, keep_chars: int = 0) -> None:
        self.policies = policies
        # Each policy with its kind (_PII, _SAFETY, _SCORER), found once per stream instead of
        # by `isinstance` on every delta (typed Any: the kind says which class it is).
        self.plan: tuple[tuple[Any, int], ...] = tuple(
            (pol, _PII if isinstance(pol, PiiDetector) else _SAFETY if isinstance(pol, SafetyFilter) else _SCORER)
            for pol in policies
        )
        self.direction: Direction = direction
        self.scanner: StreamScanner | None = None
        self.pii: PiiDetector | None = None
        self.window = ""
        self.fired: set[str] | None = None  # scoring policies that already reported on this stream
        self.pos = 0  # characters of this stream read so far
        self.armed_until = -1  # the safety filter reads the window while pos <= this
        # `keep_chars` > 0: the text read is kept (up to that many characters) for `after_stream`.
        self.keep: list[str] | None = [] if keep_chars > 0 else None
        self.kept = keep_chars  # characters still to keep

    @property
    def held(self) -> str:
        """Text read but not yet released (it could still become PII)."""
        return self.scanner.held if self.scanner is not None else ""

    def read(self, fragment: str) -> str:
        """What the policies read of an arriving fragment (override to mask)."""
        return fragment

    def release(self, text: str, spans: Sequence[Span] | None) -> str:
        """What goes out for `text` (a prefix of what was read and not yet released), with
        `spans` (relative to it) redacted when given."""
        return redact(text, spans) if spans else text

    def feed(self, fragment: str, t: str | None = None, eid: str | None = None) -> tuple[str, Judgement | None]:
        """The next fragment: what may be sent now, and what was decided (None: nothing)."""
        delta = self.read(fragment) if self.masks else fragment
        keep = self.keep
        if keep is not None and self.kept > 0:
            piece = delta[: self.kept]
            keep.append(piece)
            self.kept -= len(piece)
        direction = self.direction
        out: Judgement | None = None
        emit = delta
        to_redact: list[Span] | None = None
        pos = self.pos
        end = pos + len(delta)
        old = self.window
        window = old + delta
        view: TextView | None = None
        for pol, kind in self.plan:
            try:
                if kind is _PII:
                    scanner = self.scanner
                    if scanner is None:
                        scanner = self.scanner = StreamScanner(pol)
                        self.pii = pol
                    emit, spans = scanner.feed(delta)
                    if not spans:
                        continue
                    finding = pii_finding(spans)
                    action = pol.settings.action
                    if action == "redact":
                        to_redact = spans
                else:
                    if kind is _SAFETY:
                        # Only read the window while a trigger word can be in it: one arrived
                        # (judged on the new text and a little context before it, so a word
                        # split across deltas is seen whole) no more than WINDOW characters ago.
                        if pol.may_match_text(window[-(len(delta) + TRIGGER_CONTEXT) :]):
                            self.armed_until = end + WINDOW
                        if pos > self.armed_until:
                            continue
                        if view is None:
                            view = TextView(window)
                        scored = pol.inspect(view, new_from=len(old))
                    else:
                        if self.fired is not None and pol.name in self.fired:
                            continue
                        if view is None:
                            view = TextView(window)
                        scored = pol.inspect(view)
                    if scored is None:
                        continue
                    finding = scored
                    if self.fired is None:
                        self.fired = set()
                    self.fired.add(pol.name)
                    action = pol.settings.action
                    if action == "redact":
                        action = "block"
            except Exception as exc:  # a policy never crashes a session or a request
                if out is None:
                    out = Judgement()
                policy_error(out, pol, exc, direction, t, eid)
                if out.stop is not None:
                    break
                continue
            if action == "allow":
                continue
            if out is None:
                out = Judgement()
            if _decide(out, pol.name, action, direction, finding, t, eid):
                break
        self.window = window[-WINDOW:] if len(window) > WINDOW else window
        self.pos = end
        if to_redact is not None or self.masks:
            emit = self.release(emit, to_redact)
        return emit, out

    def flush(
        self, t: str | None = None, eid: str | None = None, *, judge: bool = True
    ) -> tuple[str, Judgement | None]:
        """Everything still held (the stream ended), released as the PII action says. With
        `judge`, PII found in it is a decision (and block/close a stop: then send nothing of it);
        without (an evicted or interrupted stream) it is only redacted when the action redacts."""
        scanner, pii = self.scanner, self.pii
        if scanner is None or pii is None:
            return "", None
        tail, spans = scanner.flush()
        if not spans:
            return self.release(tail, None), None
        action = pii.settings.action
        out: Judgement | None = None
        if judge:
            out = Judgement()
            if _decide(out, pii.name, action, self.direction, pii_finding(spans), t, eid):
                return "", out
        return self.release(tail, spans if action == "redact" else None), out

    def after_stream(self, policies: Sequence[TextPolicy], t: str | None = None) -> list[PolicyDecision]:
        """The kept text (`keep_chars`) read whole by `policies` once the stream is done. Nothing
        can be un-sent now, so what fires is recorded as a flag (audit, events, metrics)."""
        text = "".join(self.keep or ())
        if not text:
            return []
        out = Judgement()
        view = TextView(text)
        for pol in policies:
            if self.fired is not None and pol.name in self.fired:
                continue
            try:
                finding = pol.inspect(view) if not isinstance(pol, PiiDetector) else None
            except Exception as exc:
                policy_error(out, pol, exc, self.direction, t, None, can_block=False)
                continue
            if finding is not None and pol.settings.action != "allow":
                out.decisions.append(policy_decision(pol.name, "flag", self.direction, finding, t))
        return out.decisions
