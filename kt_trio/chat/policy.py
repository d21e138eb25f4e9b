"""The policy chain over chat completions: the same policies and streaming redactor as sessions.

Chat has no event types to sniff: the text lives in `messages[].content` (a string or a list of
parts) on the way in, and in `choices[].message.content` or `choices[].delta.content` on the way
out. This module finds those slots and hands them to the judging engine; no I/O.

A thin adapter over the judging engine (`kt_trio.policies.engine`): whole bodies go through
`judge_texts`, each streamed choice and tool call through its own `StreamPart` (split-safe PII
hold-back, a sliding window for phrase policies); a block raises `Stop` and the caller ends the
stream with an error chunk and `[DONE]`.

Tool calls. A tool call's `function.arguments` is a string holding JSON (usually), and the
policies see it both ways: in the request's assistant messages and in responses. Redaction keeps
it a string, and valid JSON where it was:

- whole texts (a request, a non-streamed completion): arguments that parse as JSON are judged
  as their string and number values; a redacted value is written back as a string
  (`"[REDACTED:PHONE]"`, a number becoming a string) and the arguments re-serialised only when
  something changed. Arguments that are not JSON are judged and redacted as plain text.
- streamed arguments (`delta.tool_calls[].function.arguments` fragments): the fragments of one
  tool call of one choice are one stream through their own split-safe redactor. Partial JSON
  cannot be parsed, so the scanner reads the raw text with JSON escapes masked to spaces
  (`\n` would otherwise glue its `n` to the next word and hide a phone number from the
  patterns' word boundaries); a match inside a JSON string is replaced in place, one outside a
  string (a bare number) by a quoted `"[REDACTED:KIND]"`, so the JSON stays valid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kt_trio.policies.base import Span
from kt_trio.policies.chain import PolicyChain
from kt_trio.policies.engine import Blocked, Judgement, StreamPart, TextPolicy, judge_texts
from kt_trio.policies.pii import PiiDetector
from kt_trio.records import Direction, PolicyDecision

Slot = tuple[Any, Any]  # (container, key): container[key] is a str

# Text streams one completion may open: choices (`n`) and their tool calls. Bounds what a bad
# upstream can make us hold (each holds at most a scanner's tail and a `_WINDOW` of text).
MAX_PARTS = 128
# The event type chat records and decisions carry (a chat request is one message of this type).
EVENT_TYPE = "chat.completion"
# What the whole-text pass after a stream reads of each part: a completion's text is far below
# this; a stream that goes on past it is judged on its first 4 Mi characters rather than kept
# whole in memory (the non-streamed path reads at most `app.MAX_RESPONSE_BYTES` the same way).
MAX_AFTER_STREAM_CHARS = 4 * 1024 * 1024

# A stream part: a choice's content (its index) or one of its tool calls' arguments
# (choice index, tool call index).
PartKey = int | tuple[int, int]


# A block: `policy` and `reason` go into the error body (the engine's one exception).
Stop = Blocked


class ToolArguments:
    """The judgeable text of one tool call's `function.arguments` (see the module docstring).

    `slots` are what the policies read and rewrite; `commit()` writes a redaction back into
    the call as a string (valid JSON when the arguments were JSON).
    """

    __slots__ = ("_boxes", "_fn", "_parsed", "slots")

    def __init__(self, fn: dict[str, Any]) -> None:
        self._fn = fn
        self._boxes: list[tuple[Any, Any, list[str], str]] = []  # (parent, key, box, original)
        self.slots: list[Slot] = [(fn, "arguments")]
        try:
            self._parsed: Any = json.loads(fn["arguments"])
            if isinstance(self._parsed, dict | list):
                self._collect(self._parsed)
                self.slots = [(box, 0) for _, _, box, _ in self._boxes]
                return
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than we walk
            pass
        # Not JSON, or a bare JSON scalar: judged as the text it is.
        self._parsed = None
        self._boxes.clear()

    def _collect(self, node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, dict | list):
                self._collect(value)
            elif isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
                text = value if isinstance(value, str) else json.dumps(value)
                self._boxes.append((node, key, [text], text))

    def commit(self) -> None:
        changed = False
        for parent, key, box, original in self._boxes:
            if box[0] != original:
                parent[key] = box[0]
                changed = True
        if changed:
            self._fn["arguments"] = json.dumps(self._parsed, ensure_ascii=False)


def _tool_arguments(tool_calls: Any, into: list[ToolArguments]) -> None:
    for call in tool_calls if isinstance(tool_calls, list) else ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str) and fn["arguments"]:
            into.append(ToolArguments(fn))


def message_slots(messages: Any, tool_args: list[ToolArguments] | None = None) -> list[Slot]:
    """The text slots of a chat request's messages (system, user, assistant, tool results);
    with `tool_args`, also the arguments of assistant tool calls (collected there for `commit`)."""
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
        if tool_args is not None and "tool_calls" in msg:
            start = len(tool_args)
            _tool_arguments(msg["tool_calls"], tool_args)
            for args in tool_args[start:]:
                slots.extend(args.slots)
    return slots


def _judge_with_tools(
    slots: list[Slot],
    tool_args: list[ToolArguments],
    policies: Sequence[Any],
    direction: Direction,
    decisions: list[PolicyDecision],
) -> bool:
    try:
        return judge_slots(slots, policies, direction, decisions)
    finally:
        # Even when a later policy blocks, what was redacted is written back consistently.
        for args in tool_args:
            args.commit()


def judge_slots(
    slots: Sequence[Slot], policies: Sequence[TextPolicy], direction: Direction, decisions: list[PolicyDecision]
) -> bool:
    """The engine's `judge_texts` over a chat body's slots: appends to `decisions`, returns
    whether a slot changed, raises `Stop` on block/close."""
    out = judge_texts(slots, policies, direction, EVENT_TYPE, into=Judgement(decisions))
    out.raise_if_stopped()
    return out.changed


class _ToolPart(StreamPart):
    """One tool call's streamed arguments: the policies read them with JSON escapes masked, the
    client gets the raw fragments, redacted JSON-aware (see the module docstring)."""

    __slots__ = ("_arriving", "_leaving", "_raw")
    masks = True

    def __init__(self, policies: Sequence[TextPolicy], keep_chars: int) -> None:
        super().__init__(policies, "output", keep_chars=keep_chars)
        self._arriving = _JsonLexer()  # over fragments as they arrive (masking)
        self._leaving = _JsonLexer()  # over what was released (is a span inside a string?)
        # Raw text read but not yet released: the same length as what the scanner holds, since
        # masking keeps every character's position.
        self._raw = ""

    def read(self, fragment: str) -> str:
        self._raw += fragment
        return self._arriving.mask(fragment)

    def release(self, text: str, spans: Sequence[Span] | None) -> str:
        raw, self._raw = self._raw[: len(text)], self._raw[len(text) :]
        if not spans:
            self._leaving.mask(raw)
            return raw
        out: list[str] = []
        last = 0
        for s in spans:
            out.append(raw[last : s.start])
            self._leaving.mask(raw[last : s.start])
            in_string = self._leaving.in_string
            self._leaving.mask(raw[s.start : s.end])
            label = f"[REDACTED:{s.kind}]"
            out.append(label if in_string else f'"{label}"')
            last = s.end
        out.append(raw[last:])
        self._leaving.mask(raw[last:])
        return "".join(out)


class _JsonLexer:
    """Where a stream of JSON text is (inside a string, inside an escape), one character at a
    time; `mask` returns the text with every escape sequence turned into spaces (same length)."""

    __slots__ = ("_after_backslash", "_hex_left", "in_string")

    def __init__(self) -> None:
        self.in_string = False
        self._after_backslash = False
        self._hex_left = 0  # hex digits of a `\\uXXXX` escape still to come

    def mask(self, text: str) -> str:
        if not (self.in_string or self._after_backslash or self._hex_left) and '"' not in text:
            return text  # outside strings nothing is masked: the common case of `{`, `:` or digits
        out = list(text)
        for i, ch in enumerate(text):
            if self._after_backslash:
                out[i] = " "
                self._after_backslash = False
                if ch == "u":
                    self._hex_left = 4
            elif self._hex_left:
                out[i] = " "
                self._hex_left -= 1
            elif self.in_string:
                if ch == "\\":
                    out[i] = " "
                    self._after_backslash = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
        return "".join(out)


class ChatPolicies:
    """The chain as one chat completion sees it: input judging, and streamed output per part
    (a choice's content, or one of its tool calls' arguments)."""

    def __init__(self, chain: PolicyChain) -> None:
        self.input_policies = chain.input_text_policies
        self.output_policies = chain.output_policies
        # The policies of the pass after a stream (PII redacts as the text streams, not after):
        # with none, a stream's text is not kept at all.
        self._after_stream = tuple(p for p in self.output_policies if not isinstance(p, PiiDetector))
        self._parts: dict[PartKey, StreamPart] = {}

    def judge_request(self, body: dict[str, Any], decisions: list[PolicyDecision]) -> bool:
        """Input policies over the request's messages (tool call arguments and tool results
        included); True when redaction rewrote it."""
        if not self.input_policies:
            return False
        tool_args: list[ToolArguments] = []
        slots = message_slots(body.get("messages"), tool_args)
        if not slots:
            return False
        return _judge_with_tools(slots, tool_args, self.input_policies, "input", decisions)

    def judge_response(self, body: dict[str, Any], decisions: list[PolicyDecision]) -> bool:
        """Output policies over a whole (non-streamed) completion's choices: content and tool
        call arguments."""
        if not self.output_policies:
            return False
        slots: list[Slot] = []
        tool_args: list[ToolArguments] = []
        for choice in body.get("choices") or ():
            msg = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(msg, dict):
                continue
            if isinstance(msg.get("content"), str):
                slots.append((msg, "content"))
            start = len(tool_args)
            _tool_arguments(msg.get("tool_calls"), tool_args)
            for args in tool_args[start:]:
                slots.extend(args.slots)
        if not slots:
            return False
        return _judge_with_tools(slots, tool_args, self.output_policies, "output", decisions)

    def feed(self, key: PartKey, delta: str, decisions: list[PolicyDecision]) -> str:
        """What part `key` may send the client now (redacted), given its next delta: `key` is a
        choice index for its content, (choice index, tool call index) for a tool call's arguments."""
        policies = self.output_policies
        if not policies:
            return delta
        part = self._parts.get(key)
        if part is None:
            if len(self._parts) >= MAX_PARTS:
                raise Stop("gateway", "too many choices or tool calls in one stream")
            keep = MAX_AFTER_STREAM_CHARS if self._after_stream else 0
            if isinstance(key, tuple):
                part = _ToolPart(policies, keep)
            else:
                part = StreamPart(policies, "output", keep_chars=keep)
            self._parts[key] = part
        emit, out = part.feed(delta, EVENT_TYPE)
        if out is not None:
            decisions.extend(out.decisions)
            out.raise_if_stopped()
        return emit

    def flush(self, key: PartKey, decisions: list[PolicyDecision]) -> str:
        """What part `key` still holds (its stream is done), redacted as the action says."""
        part = self._parts.get(key)
        if part is None:
            return ""
        tail, out = part.flush(EVENT_TYPE)
        if out is not None:
            decisions.extend(out.decisions)
            out.raise_if_stopped()
        return tail

    def parts_of(self, index: int) -> list[PartKey]:
        """The parts of choice `index` that hold text back (its content, its tool calls)."""
        return [
            k for k, p in self._parts.items() if (k == index or (isinstance(k, tuple) and k[0] == index)) and p.held
        ]

    def open_parts(self) -> list[PartKey]:
        return [k for k, p in self._parts.items() if p.held]

    def after_stream(self, decisions: list[PolicyDecision]) -> None:
        """Issue 8: after the stream, output policies see the complete text. Nothing can be
        un-sent now, so what fires here is recorded as a flag (audit, events, metrics)."""
        for part in self._parts.values():
            decisions.extend(part.after_stream(self._after_stream, EVENT_TYPE))
