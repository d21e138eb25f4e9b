"""Token usage: pure extraction from provider events, and per-session accumulation.

Which events carry usage, and where (checked against openai-python's generated types:
`realtime.RealtimeResponseUsage`, `responses.ResponseUsage`,
`realtime.ConversationItemInputAudioTranscriptionCompletedEvent`):

- Realtime `response.done`: ``response.usage`` = ``{input_tokens, output_tokens, total_tokens,
  input_token_details: {cached_tokens, text_tokens, audio_tokens, image_tokens, ...},
  output_token_details: {text_tokens, audio_tokens}}``; ``response.id``. Sent for every final
  status (completed, cancelled, failed, incomplete); a cancelled response is billed too.
- Responses WebSocket `response.completed` (and `response.incomplete` / `response.failed`, which
  carry the same `response` object and are billed for what was generated): ``response.usage`` =
  ``{input_tokens, output_tokens, total_tokens, input_tokens_details: {cached_tokens},
  output_tokens_details: {reasoning_tokens}}`` (note the plural ``tokens_details``);
  ``response.id``, ``response.model``. Reasoning tokens are part of `output_tokens`;
  `TokenUsage` has no separate field for them.
- `conversation.item.input_audio_transcription.completed`: ``usage`` is either
  ``{type: "tokens", input_tokens, output_tokens, total_tokens, input_token_details:
  {text_tokens, audio_tokens}}`` or ``{type: "duration", seconds}``; ``item_id`` names it.

Only those event types are parsed; the caller sniffs the type first (`kt_trio.protocol.sniff`)
and passes everything else through untouched.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

from attrs import frozen

from kt_trio.records import ResponseUsage, TokenUsage

UsageKind = Literal["response", "transcription"]

REALTIME_RESPONSE_DONE = "response.done"
RESPONSES_FINAL_TYPES = frozenset({"response.completed", "response.incomplete", "response.failed"})
TRANSCRIPTION_COMPLETED = "conversation.item.input_audio_transcription.completed"

USAGE_EVENT_TYPES: frozenset[str] = frozenset({REALTIME_RESPONSE_DONE, TRANSCRIPTION_COMPLETED, *RESPONSES_FINAL_TYPES})
"""Server event types that may carry usage: parse only these."""

# -- models -------------------------------------------------------------------------------------

ModelSource = Literal["url", "session.created", "session.update", "response.create", "response"]

MODEL_PRECEDENCE: tuple[ModelSource, ...] = (
    "url",
    "session.created",
    "session.update",
    "response.create",
    "response",
)
"""Where a session's model can come from, least specific first; the most specific known wins.

- ``url``: the client's ``?model=``; it picks the target and may be an alias the server resolves.
- ``session.created``: the server's statement of the session's model when the session opens.
- ``session.update``: a model set for the session after it opened (the client's
  `session.update`, or the server's `session.updated` echo of it), so it supersedes the above.
- ``response.create``: the model the client asked for on a response (the Responses API names
  one on every `response.create`), narrower than the session's.
- ``response``: the model the server reports on the finished response itself
  (Responses `response.completed`), which is what was actually billed.

Within one source, the latest value wins; a new ``response.create`` model also drops the
previous ``response`` report, since that described the earlier response.
"""

_RANK: dict[str, int] = {s: i for i, s in enumerate(MODEL_PRECEDENCE)}

CLIENT_MODEL_EVENT_TYPES = frozenset({"session.update", "response.create"})
SERVER_MODEL_EVENT_TYPES = frozenset({"session.created", "session.updated"})

# Model names come from clients (`response.create`), so both their length and how many distinct
# ones a session tracks are capped; beyond the cap, usage is summed under OTHER_MODEL.
MAX_MODEL_NAME_CHARS = 128
MAX_MODELS_PER_SESSION = 16
OTHER_MODEL = "(other)"
UNKNOWN_MODEL = ""


@frozen
class UsageEvent:
    """Usage carried by one server event."""

    usage: TokenUsage
    response_id: str | None
    kind: UsageKind
    model: str | None = None


def _obj(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def _int(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    # bool is an int subclass; a `true` where a count belongs is malformed, not 1.
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    return 0


def _float(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
        return float(v)
    return 0.0


def _str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) and v else None


def _load(data: bytes | bytearray | memoryview) -> dict[str, Any] | None:
    try:
        obj = json.loads(bytes(data))
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def _total(u: dict[str, Any], input_tokens: int, output_tokens: int) -> int:
    # Trust the server's total; fill it in only when it is missing.
    return _int(u, "total_tokens") or input_tokens + output_tokens


def parse_usage_event(event_type: str, data: bytes | bytearray | memoryview) -> UsageEvent | None:
    """The usage in one server event, or None if this type carries none or the event has none."""
    if event_type not in USAGE_EVENT_TYPES:
        return None
    obj = _load(data)
    if obj is None:
        return None

    if event_type == TRANSCRIPTION_COMPLETED:
        u = obj.get("usage")
        if not isinstance(u, dict):
            return None
        if u.get("type") == "duration":
            usage = TokenUsage(transcription_seconds=_float(u, "seconds"))
        else:  # "tokens", and any future token-shaped variant
            details = _obj(u, "input_token_details")
            i, o = _int(u, "input_tokens"), _int(u, "output_tokens")
            usage = TokenUsage(
                input_tokens=i,
                output_tokens=o,
                total_tokens=_total(u, i, o),
                input_text_tokens=_int(details, "text_tokens"),
                input_audio_tokens=_int(details, "audio_tokens"),
            )
        return UsageEvent(usage, _str(obj, "item_id"), "transcription")

    response = _obj(obj, "response")
    u = response.get("usage")
    if not isinstance(u, dict):
        return None  # e.g. a response cancelled before the model ran: `usage: null`
    i, o = _int(u, "input_tokens"), _int(u, "output_tokens")
    if event_type == REALTIME_RESPONSE_DONE:
        ind, outd = _obj(u, "input_token_details"), _obj(u, "output_token_details")
        usage = TokenUsage(
            input_tokens=i,
            output_tokens=o,
            total_tokens=_total(u, i, o),
            cached_tokens=_int(ind, "cached_tokens"),
            cached_audio_tokens=_int(_obj(ind, "cached_tokens_details"), "audio_tokens"),
            input_text_tokens=_int(ind, "text_tokens"),
            input_audio_tokens=_int(ind, "audio_tokens"),
            input_image_tokens=_int(ind, "image_tokens"),
            output_text_tokens=_int(outd, "text_tokens"),
            output_audio_tokens=_int(outd, "audio_tokens"),
        )
    else:  # Responses API: `input_tokens_details`, plural
        usage = TokenUsage(
            input_tokens=i,
            output_tokens=o,
            total_tokens=_total(u, i, o),
            cached_tokens=_int(_obj(u, "input_tokens_details"), "cached_tokens"),
        )
    return UsageEvent(usage, _str(response, "id"), "response", _str(response, "model"))


def usage_from_event(
    event_type: str, data: bytes | bytearray | memoryview
) -> tuple[TokenUsage, str | None, UsageKind] | None:
    """``(usage, response_id, kind)`` from one server event, or None. For transcriptions the id
    is the transcribed item's `item_id`."""
    ev = parse_usage_event(event_type, data)
    if ev is None:
        return None
    return ev.usage, ev.response_id, ev.kind


def model_from_event(event_type: str, data: bytes | bytearray | memoryview) -> tuple[ModelSource, str] | None:
    """The model an event names, with its `ModelSource`, or None.

    Client events: `session.update` (``session.model``), `response.create` (top-level ``model``
    in the Responses API, ``response.model`` where a Realtime client sets one). Server events:
    `session.created`, `session.updated` (``session.model``).
    """
    if event_type not in CLIENT_MODEL_EVENT_TYPES and event_type not in SERVER_MODEL_EVENT_TYPES:
        return None
    obj = _load(data)
    if obj is None:
        return None
    if event_type == "response.create":
        model = _str(obj, "model") or _str(_obj(obj, "response"), "model")
        return ("response.create", model) if model else None
    model = _str(_obj(obj, "session"), "model")
    if model is None:
        return None
    return ("session.created" if event_type == "session.created" else "session.update"), model


# -- accumulation -------------------------------------------------------------------------------


class UsageAccumulator:
    """One session's usage: totals over *every* response and transcription (not just the last
    one, the bug other gateways have), per model, and a `ResponseUsage` record per response for
    the session's reporting point. Records are handed out, not kept, so memory stays constant
    however long the session runs.
    """

    __slots__ = (
        "_by_model",
        "_models",
        "_total",
        "responses",
        "session_id",
        "target",
        "transcriptions",
    )

    def __init__(self, session_id: str, target: str, url_model: str | None = None) -> None:
        self.session_id = session_id
        self.target = target
        self._models: dict[str, str] = {}  # source -> latest model; at most len(MODEL_PRECEDENCE)
        self._by_model: dict[str, TokenUsage] = {}
        self._total = TokenUsage()
        self.responses = 0
        self.transcriptions = 0
        if url_model:
            self.note_model("url", url_model)

    # -- model --------------------------------------------------------------------------------------

    def note_model(self, source: ModelSource, model: str) -> None:
        """Record that `source` named `model` (see `MODEL_PRECEDENCE` for which one wins)."""
        if source not in _RANK:
            raise ValueError(f"unknown model source {source!r}")
        if not model:
            return
        self._models[source] = model[:MAX_MODEL_NAME_CHARS]
        if source == "response.create":
            # A new request supersedes what the server reported for the previous response;
            # otherwise that report (the more specific source) would shadow the new choice.
            self._models.pop("response", None)

    @property
    def model(self) -> str:
        """The session's model: the most specific source known, or "" if none is."""
        for source in reversed(MODEL_PRECEDENCE):
            m = self._models.get(source)
            if m is not None:
                return m
        return UNKNOWN_MODEL

    # -- usage --------------------------------------------------------------------------------------

    def add(
        self,
        usage: TokenUsage,
        response_id: str | None = None,
        kind: UsageKind = "response",
        model: str | None = None,
    ) -> ResponseUsage:
        """Add one response's (or transcription's) usage; returns its record for reporting."""
        if model:
            self.note_model("response", model)
        model_name = self.model
        self._total = self._total + usage
        key = model_name
        if key not in self._by_model and len(self._by_model) >= MAX_MODELS_PER_SESSION:
            key = OTHER_MODEL
        self._by_model[key] = self._by_model.get(key, TokenUsage()) + usage
        if kind == "transcription":
            self.transcriptions += 1
        else:
            self.responses += 1
        return ResponseUsage(self.session_id, self.target, model_name, usage, response_id, kind)

    def observe_server_event(self, event_type: str, data: bytes | bytearray | memoryview) -> ResponseUsage | None:
        """Feed one provider → client event (its sniffed type first); the usage record, if any.

        Parses only `USAGE_EVENT_TYPES` and the session events that name a model.
        """
        if event_type in USAGE_EVENT_TYPES:
            ev = parse_usage_event(event_type, data)
            if ev is None:
                return None
            return self.add(ev.usage, ev.response_id, ev.kind, ev.model)
        if event_type in SERVER_MODEL_EVENT_TYPES:
            self._note_from(event_type, data)
        return None

    def observe_client_event(self, event_type: str, data: bytes | bytearray | memoryview) -> None:
        """Feed one client → provider event (its sniffed type first); notes a model it names."""
        if event_type in CLIENT_MODEL_EVENT_TYPES:
            self._note_from(event_type, data)

    def _note_from(self, event_type: str, data: bytes | bytearray | memoryview) -> None:
        found = model_from_event(event_type, data)
        if found is not None:
            self.note_model(*found)

    @property
    def total(self) -> TokenUsage:
        """The sum over every response and transcription so far (for the session summary)."""
        return self._total

    @property
    def by_model(self) -> Mapping[str, TokenUsage]:
        """Sums per model name (read-only view)."""
        return MappingProxyType(self._by_model)
