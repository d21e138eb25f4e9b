"""The policy chain over chat completions: the same policies and streaming redactor as sessions.

Chat has no event types to sniff: the text lives in `messages[].content` (a string or a list of
parts) on the way in, and in `choices[].message.content` or `choices[].delta.content` on the way
out. This module finds those slots and asks the chain's policies about them through their own
pure entry points (`PiiDetector.find`, `inspect(TextView)`, `StreamScanner`); no I/O.

Streamed output follows `SessionPolicies._on_delta`: per choice, a `StreamScanner` holds back
only the tail that could still become PII, scoring policies read a sliding window, and a block
stops the stream (the caller ends it with an error chunk and `[DONE]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kt_trio.policies.base import Finding, Span, TextView
from kt_trio.policies.chain import PolicyChain
from kt_trio.policies.pii import PiiDetector, redact
from kt_trio.policies.safety import SafetyFilter
from kt_trio.policies.streaming import StreamScanner
from kt_trio.records import Direction, PolicyDecision

Slot = tuple[Any, Any]  # (container, key): container[key] is a str

# As in kt_trio.policies.chain: streamed text a phrase policy re-reads, and the context before a
# delta that the safety filter's trigger check reads (the longest trigger word is 12).
_WINDOW = 128
_TRIGGER_CONTEXT = 24
# Choices per completion a stream may open (`n`); bounds what a bad upstream can make us hold.
MAX_CHOICES = 128


class Stop(Exception):
    """A policy blocked: `policy` and `reason` go into the error body."""

    def __init__(self, policy: str, reason: str) -> None:
        super().__init__(reason)
        self.policy = policy
        self.reason = reason


def message_slots(messages: Any) -> list[Slot]:
    """The text slots of a chat request's messages (system, user, assistant, tool results)."""
    slots: list[Slot] = []
    if not isinstance(messages, list):
        return slots
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            slots.append((msg, "content"))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                    slots.append((part, "text"))
    return slots


def judge_slots(
    slots: Sequence[Slot], policies: Sequence[Any], direction: Direction, decisions: list[PolicyDecision]
) -> bool:
    """Run `policies` in order over whole texts; redactions rewrite the slots in place.

    Appends to `decisions`; returns whether a slot changed; raises `Stop` on block/close.
    """
    changed = False
    view: TextView | None = None
    for pol in policies:
        try:
            if isinstance(pol, PiiDetector):
                found = [(slot, spans) for slot in slots if (spans := pol.find(slot[0][slot[1]]))]
                if not found:
                    continue
                kinds = tuple(sorted({s.kind for _, spans in found for s in spans}))
                finding = Finding(reason=f"PII detected: {', '.join(kinds)}", kinds=kinds)
                action = pol.settings.action
                if action == "redact":
                    for (container, key), spans in found:
                        container[key] = redact(container[key], spans)
                    changed = True
                    view = None
            else:
                if view is None:
                    view = TextView("\n".join(c[k] for c, k in slots))
                finding = pol.inspect(view)
                if finding is None:
                    continue
                action = pol.settings.action
                if action == "redact":  # nothing to redact for a score: treat as block
                    action = "block"
        except Exception as exc:  # a policy never crashes a request
            _policy_error(pol, exc, direction, decisions)
            continue
        if action == "allow":
            continue
        decisions.append(_decision(pol.name, action, direction, finding))
        if action in ("block", "close"):
            raise Stop(pol.name, finding.reason)
    return changed


class _Part:
    __slots__ = ("armed_until", "fired", "pos", "scanner", "text", "window")

    def __init__(self) -> None:
        self.scanner: StreamScanner | None = None
        self.window = ""
        self.fired: set[str] = set()
        self.pos = 0
        self.armed_until = -1
        self.text: list[str] = []  # the raw text, for the whole-text pass after the stream


class ChatPolicies:
    """The chain as one chat completion sees it: input judging, and streamed output per choice."""

    def __init__(self, chain: PolicyChain) -> None:
        self.input_policies = chain.input_text_policies
        self.output_policies = chain.output_policies
        self._parts: dict[int, _Part] = {}

    def judge_request(self, body: dict[str, Any], decisions: list[PolicyDecision]) -> bool:
        """Input policies over the request's messages; True when redaction rewrote it."""
        if not self.input_policies:
            return False
        slots = message_slots(body.get("messages"))
        if not slots:
            return False
        return judge_slots(slots, self.input_policies, "input", decisions)

    def judge_response(self, body: dict[str, Any], decisions: list[PolicyDecision]) -> bool:
        """Output policies over a whole (non-streamed) completion's choices."""
        if not self.output_policies:
            return False
        slots: list[Slot] = []
        for choice in body.get("choices") or ():
            msg = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                slots.append((msg, "content"))
        if not slots:
            return False
        return judge_slots(slots, self.output_policies, "output", decisions)

    def feed(self, index: int, delta: str, decisions: list[PolicyDecision]) -> str:
        """The text of choice `index` that may go to the client now (redacted), given its next delta."""
        policies = self.output_policies
        if not policies:
            return delta
        part = self._parts.get(index)
        if part is None:
            if len(self._parts) >= MAX_CHOICES:
                raise Stop("gateway", "too many choices in one stream")
            part = self._parts[index] = _Part()
        part.text.append(delta)
        emit = delta
        start = part.pos
        end = start + len(delta)
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
                    finding, action = _pii_finding(spans), pol.settings.action
                    if action == "redact":
                        emit = redact(emit, spans)
                else:
                    if isinstance(pol, SafetyFilter):
                        if pol.may_match(TextView(window[-(len(delta) + _TRIGGER_CONTEXT) :])):
                            part.armed_until = end + _WINDOW
                        if start > part.armed_until:
                            continue
                        view = view or TextView(window)
                        finding = pol.inspect(view, new_from=len(part.window))
                    else:
                        if pol.name in part.fired:
                            continue
                        view = view or TextView(window)
                        finding = pol.inspect(view)
                    if finding is None:
                        continue
                    part.fired.add(pol.name)
                    action = pol.settings.action
                    if action == "redact":
                        action = "block"
            except Exception as exc:  # a policy never crashes a request
                _policy_error(pol, exc, "output", decisions)
                continue
            if action == "allow":
                continue
            decisions.append(_decision(pol.name, action, "output", finding))
            if action in ("block", "close"):
                raise Stop(pol.name, finding.reason)
        part.window = window[-_WINDOW:]
        part.pos = end
        return emit

    def flush(self, index: int, decisions: list[PolicyDecision]) -> str:
        """What choice `index` still holds (its stream is done), redacted as the action says."""
        part = self._parts.get(index)
        if part is None or part.scanner is None:
            return ""
        tail, spans = part.scanner.flush()
        if not spans:
            return tail
        pii = part.scanner._pii
        action = pii.settings.action
        if action != "allow":
            decisions.append(_decision(pii.name, action, "output", _pii_finding(spans)))
        if action in ("block", "close"):
            raise Stop(pii.name, _pii_finding(spans).reason)
        return redact(tail, spans) if action == "redact" else tail

    def open_choices(self) -> list[int]:
        return [i for i, p in self._parts.items() if p.scanner is not None and p.scanner.held]

    def after_stream(self, decisions: list[PolicyDecision]) -> None:
        """Issue 8: after the stream, output policies see the complete text. Nothing can be
        un-sent now, so what fires here is recorded as a flag (audit, events, metrics)."""
        for part in self._parts.values():
            text = "".join(part.text)
            if not text:
                continue
            view = TextView(text)
            for pol in self.output_policies:
                if isinstance(pol, PiiDetector) or pol.name in part.fired:
                    continue
                try:
                    finding = pol.inspect(view)
                except Exception as exc:
                    _policy_error(pol, exc, "output", decisions, can_block=False)
                    continue
                if finding is not None and pol.settings.action != "allow":
                    decisions.append(_decision(pol.name, "flag", "output", finding))


def _pii_finding(spans: Sequence[Span]) -> Finding:
    kinds = tuple(sorted({s.kind for s in spans}))
    return Finding(reason=f"PII detected: {', '.join(kinds)}", kinds=kinds)


def _decision(policy: str, action: Any, direction: Direction, finding: Finding) -> PolicyDecision:
    return PolicyDecision(
        policy=policy,
        action=action,
        direction=direction,
        reason=finding.reason,
        score=finding.score,
        redacted_kinds=finding.kinds if action == "redact" else (),
        event_type="chat.completion",
    )


def _policy_error(
    pol: Any, exc: Exception, direction: Direction, decisions: list[PolicyDecision], *, can_block: bool = True
) -> None:
    on_error = pol.settings.on_error
    decisions.append(
        PolicyDecision(
            policy=pol.name,
            action="block" if on_error == "block" and can_block else "allow",
            direction=direction,
            reason=f"policy error ({type(exc).__name__}); on_error={on_error}",
            event_type="chat.completion",
        )
    )
    if on_error == "block" and can_block:
        raise Stop(pol.name, f"The {pol.name} policy could not check this message.")
