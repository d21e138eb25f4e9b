"""How long a response inside a WebSocket session takes, from the event types the pump already
sniffs (pure: the caller passes the time; no parsing on the way).

A response starts when the client asks for it (`response.create`, Realtime and the Responses
API alike) or, for a response the server starts by itself (Realtime server VAD), when the
server announces it (`response.created`). Its first chunk is the first `*.delta` event after
that; it ends with the event that carries its usage (`response.done`, `response.completed`,
`response.incomplete`, `response.failed`). Duration and time to first chunk are measured
between those moments as the gateway sees them, i.e. as its client would, minus the client's
own network leg.

Responses that overlap (a Realtime client may ask for an out-of-band response while another
runs) are timed as one sequence: each `response.created` takes the oldest unanswered
`response.create`, and the first delta after it counts for the open response. Exact per-id
matching would mean parsing every delta; the overlap is rare and the error is bounded by it.
"""

from __future__ import annotations

import json
from collections import deque

from attrs import frozen

CREATE = "response.create"
CREATED = "response.created"
FINAL_TYPES = frozenset({"response.done", "response.completed", "response.incomplete", "response.failed"})
DELTA_SUFFIX = ".delta"
# Asked-for responses not yet announced: a client may queue a few; more than this waiting at
# once is not a real client, and forgetting the oldest only shortens what is measured.
MAX_PENDING_ASKS = 16
# `error.type` values come from the provider's answer: cut so a label cannot grow without bound.
MAX_ERROR_TYPE_CHARS = 64


@frozen
class Lap:
    """One response's duration and, when it streamed any delta, its time to the first one."""

    duration_secs: float
    time_to_first_chunk_secs: float | None


class ResponseClock:
    __slots__ = ("_asked", "_first", "_started", "awaiting_chunk")

    def __init__(self) -> None:
        self._asked: deque[float] = deque(maxlen=MAX_PENDING_ASKS)
        self._started: float | None = None
        self._first: float | None = None
        # True between a response's start and its first delta: only then does the pump look
        # at whether a message is a delta (one attribute test per message otherwise).
        self.awaiting_chunk = False

    def asked(self, now: float) -> None:
        """The client sent `response.create`."""
        self._asked.append(now)

    def created(self, now: float) -> None:
        """The server sent `response.created`."""
        if self._started is None:
            self._started = self._asked.popleft() if self._asked else now
            self._first = None
            self.awaiting_chunk = True

    def chunk(self, now: float) -> None:
        """A `*.delta` event while `awaiting_chunk`."""
        if self._started is not None and self._first is None:
            self._first = now
        self.awaiting_chunk = False

    def finished(self, now: float) -> Lap | None:
        """The response's final event; None when no start was seen (nothing to measure)."""
        started = self._started
        if started is None:
            if not self._asked:
                return None
            started = self._asked.popleft()
        first = self._first
        self._started = self._first = None
        self.awaiting_chunk = False
        return Lap(max(0.0, now - started), None if first is None else max(0.0, first - started))


def response_error(event_type: str, data: bytes | bytearray | memoryview) -> str | None:
    """`error.type` of a final response event whose status is `failed`, else None.

    Realtime `response.done` and Responses `response.failed` carry the error in
    `response.status_details.error` or `response.error`; its `type` (or `code`) names it. Only
    a payload mentioning `"failed"` is parsed, so a successful response costs a byte search."""
    raw = bytes(data)
    if event_type not in FINAL_TYPES or b'"failed"' not in raw:
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    response = obj.get("response") if isinstance(obj, dict) else None
    if not isinstance(response, dict) or response.get("status") != "failed":
        return None
    for holder in (response.get("status_details"), response):
        error = holder.get("error") if isinstance(holder, dict) else None
        if isinstance(error, dict):
            for key in ("type", "code"):
                value = error.get(key)
                if isinstance(value, str) and value:
                    return value[:MAX_ERROR_TYPE_CHARS]
    return "failed"
