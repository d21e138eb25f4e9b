"""The small message model the policy chain judges: each text message decoded once.

A WebSocket text message is decoded by one of two ways, and both give the same model:

- the byte path, for the two commonest text events in the layouts OpenAI's servers and SDKs
  send (`_GA_DELTA`, `_ITEM_CREATE`): one `decode` and one regex match, no `json.loads`;
- `json.loads` (`fast.loads`) for everything else.

`TextDelta` is one streamed piece of text (output, or the transcription of the user's speech);
`ClientText` is a client event's text slots. tests/test_policies_fastpath.py proves the byte
path equal to the parsing path on every shape it accepts.
"""

from __future__ import annotations

import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any, TypeAlias

from kt_trio.protocol.events import STREAM_DELTA, Slot, part_key

PartKey = tuple[str, str, str, int]
"""Identity of one streamed content part: (family, response_id, item_id, content_index)."""


TextDelta: TypeAlias = tuple[
    str, str, str, str, "str | None", "str | None", "str | None", PartKey, "dict[str, Any] | None", "int | None"
]
"""One streamed text delta: (type, field, family, text, event_id, response_id, item_id, key,
obj, text_start). `field` is the member holding the text, `family` `events.STREAM_DELTA`'s
(text, transcript, input_transcript, ...), `key` its part. `obj` is the parsed event (None when
the byte path decoded it: then `text_start` is where the text's characters begin in the
message, and the text's closing quote and `}` end it). A plain tuple, not a named one: one is
made for every delta, and callers unpack it (a `NamedTuple` cost ~1,000 instructions more)."""


ClientText: TypeAlias = tuple[str, "str | None", list[Slot], "dict[str, Any] | None"]
"""A client event that carries text: (type, event_id, slots, obj). `slots` are its text slots
(`events.input_slots`); `obj` is the parsed event, None when the byte path decoded it (then
there is exactly one slot, a box). A plain tuple, like `TextDelta`."""


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def event_id_of(obj: dict[str, Any]) -> str | None:
    return _str(obj.get("event_id"))


def delta_of(obj: dict[str, Any], t: str, current_response: str | None = None) -> TextDelta | None:
    """The `TextDelta` of a parsed delta event (`t` in `STREAM_DELTA`); None when its text
    member is not a string. `current_response`: the response a Responses-mode delta (which
    names none) belongs to."""
    family, field = STREAM_DELTA[t]
    text = obj.get(field)
    if not isinstance(text, str):
        return None
    rid = obj.get("response_id")
    if not isinstance(rid, str):
        rid = current_response
    key = part_key(obj, family)
    if rid and not key[1]:
        key = (key[0], rid, key[2], key[3])
    return (t, field, family, text, event_id_of(obj), rid, _str(obj.get("item_id")), key, obj, None)


def fast_delta(data: bytes, t: str) -> TextDelta | None:
    """A delta in the GA layout (`_GA_DELTA`) decoded without parsing it; None when it is not
    in that layout or its text does not decode (the caller then parses it)."""
    try:
        # One decode serves the layout match, the ids and the text (the match covers only
        # ASCII up to the text, so its offsets there are byte offsets as well).
        raw = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
    m = _GA_DELTA.match(raw)
    if m is None:
        return None
    eid, rid, iid, index, text = m.groups()
    if text is not None:
        # The text needed no unescaping (the common case): it ends two characters before the end.
        start = len(raw) - 2 - len(text)
    else:
        start = m.end()
        text = _final_str(raw, start, "}")
        if text is None:
            return None
    family, field = STREAM_DELTA[t]
    return (
        t,
        field,
        family,
        text,
        eid,
        rid,
        iid,
        (family, rid, iid, _INDEX[index] if index in _INDEX else int(index)),
        None,
        start,
    )


# `int()` of the content indexes that occur, by a dict lookup (an `int` call costs ~1,000
# instructions on every delta).
_INDEX = {str(i): i for i in range(16)}


def fast_item_create(data: bytes) -> ClientText | None:
    """A one-text `conversation.item.create` in the common layout (`_ITEM_CREATE`), decoded
    without parsing it: one slot, a one-element list box holding the text."""
    try:
        raw = data.decode("utf-8", "surrogatepass")  # one decode for the match and the text
    except UnicodeDecodeError:
        return None
    m = _ITEM_CREATE.match(raw)
    if m is None:
        return None
    # (Not read by the regex, as a delta's text is: sre's step per character costs more than
    # `scanstring` on a text of this size.)
    text = _final_str(raw, m.end(), "}]}}")
    if text is None:
        return None
    return ("conversation.item.create", m.group(1), [([text], 0)], None)


# A text or transcript delta as the Realtime GA (and beta) server sends it: these members in this
# order, compact or with `json.dumps`' single spaces, ids of printable ASCII without quote or
# backslash, JSON integers, and the text a valid JSON string (no raw control characters, valid
# escapes; `_GA_DELTA` matches up to the text's opening quote, `_final_str` checks the rest).
# Such a message parses to exactly these seven members, so the chain can judge it from the match
# alone and rewrite the text in place. Anything else (other layouts, other
# whitespace, Responses-mode deltas) is parsed.
GA_DELTA_TYPES = frozenset(
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
_TYPES_ALT = b"|".join(re.escape(x.encode("ascii")) for x in sorted(GA_DELTA_TYPES))


def _member(key: bytes, value: bytes) -> bytes:
    return rb'"' + key + rb'":' + _SP + value


def _optional(pattern: bytes) -> bytes:
    return rb"(?:" + pattern + rb")?"


# Matched on the decoded message (str), see `fast_delta`.
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
                # The text, when it needs no unescaping and nothing but `"}` follows it (then it
                # is a valid JSON string as it stands); else the group is None and `_final_str`
                # reads it from the match's end.
                _member(b"delta", rb'"') + rb'(?:([^"\\\x00-\x1f]*)"\}\Z)?',
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
    assert isinstance(value, str)
    return value if end == len(text) - len(suffix) else None
