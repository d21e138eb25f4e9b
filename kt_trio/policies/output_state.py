"""What a session's policy chain remembers about the provider's output, as a named state machine.

Responses (by id)::

    (unseen) --response.created--> ACTIVE --response.done/completed/...--> ENDED (forgotten)
    (unseen) | ACTIVE --a policy blocks its text--> CANCELLED

A CANCELLED response is remembered (the last `MAX_BLOCKED`) so its stragglers are dropped: later
deltas silently, audio by its id in the first bytes, and repeats with their text emptied.

Items (by id; a user turn whose transcription was blocked, or an output item)::

    (unseen) --a policy blocks its text--> BLOCKED   (remembered like a cancelled response)

Streamed parts (by `messages.PartKey`)::

    (none) --first delta--> OPEN --text held back for PII--> HELD --more text--> OPEN ...
    OPEN | HELD --.done | its response ended | evicted (over MAX_OPEN_PARTS)--> DONE (forgotten,
                 what it held is flushed) ; --its response cancelled / item blocked--> DONE (dropped)

The Responses WebSocket mode's deltas name no response: `current_response` (the last created)
stands for it there.
"""

from __future__ import annotations

from collections import OrderedDict
from enum import Enum
from typing import Any, TypeVar

from kt_trio.policies.engine import StreamPart
from kt_trio.protocol.messages import PartKey

# Open streamed parts per session. A response streams one part per content part (text or audio
# transcript) of each output item, and one transcription per user turn; a few responses at once
# make a handful. 32 is far above that and bounds what an upstream that never sends `.done`
# can make us hold (each part: <= 512 held characters, a 128-character window, one small dict).
MAX_OPEN_PARTS = 32
# How many cancelled responses / blocked items are remembered to drop their stragglers.
MAX_BLOCKED = 64


class ResponseState(Enum):
    UNSEEN = "unseen"
    ACTIVE = "active"
    CANCELLED = "cancelled"


class PartState(Enum):
    NONE = "none"
    OPEN = "open"
    HELD = "held"


class SessionPart(StreamPart):
    """A streamed part of a session: the engine's stream plus the event it came in (without its
    text), from which a synthetic delta carrying a flushed tail is made."""

    __slots__ = ("template",)

    def __init__(self, template: dict[str, Any], *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.template = template


V = TypeVar("V")


def _bounded_add(d: OrderedDict[str, V], key: str, value: V) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > MAX_BLOCKED:
        d.popitem(last=False)


class OutputState:
    __slots__ = ("_active", "_cancelled", "_items", "anything_blocked", "current_response", "parts")

    def __init__(self) -> None:
        self.parts: OrderedDict[PartKey, SessionPart] = OrderedDict()
        # Cancelled response id -> the bytes its audio deltas carry, made once: every later
        # audio delta is checked against them.
        self._cancelled: OrderedDict[str, bytes] = OrderedDict()
        self._items: OrderedDict[str, None] = OrderedDict()
        self._active: OrderedDict[str, None] = OrderedDict()
        self.current_response: str | None = None
        # Whether any response was cancelled or item blocked: once true it stays (both are
        # remembered, bounded), and while false the hot path skips every blocked-id check.
        self.anything_blocked = False

    # -- responses --------------------------------------------------------------------------

    def response_state(self, rid: str) -> ResponseState:
        if rid in self._cancelled:
            return ResponseState.CANCELLED
        return ResponseState.ACTIVE if rid in self._active else ResponseState.UNSEEN

    def response_created(self, rid: str) -> None:
        _bounded_add(self._active, rid, None)
        self.current_response = rid

    def response_ended(self, rid: str) -> list[SessionPart]:
        """The response is done: its parts whose `.done` never came, to flush (in order)."""
        self._active.pop(rid, None)
        return [self.parts.pop(k) for k in [k for k in self.parts if k[1] == rid]]

    @property
    def active_responses(self) -> tuple[str, ...]:
        return tuple(self._active)

    def cancel_response(self, rid: str) -> bool:
        """A policy blocked this response's text: True when it was not cancelled before."""
        new = rid not in self._cancelled
        self.anything_blocked = True
        _bounded_add(self._cancelled, rid, f'"response_id":"{rid}"'.encode())
        for key in [k for k in self.parts if k[1] == rid]:
            del self.parts[key]
        return new

    # -- items ------------------------------------------------------------------------------

    def item_blocked(self, iid: str) -> bool:
        return iid in self._items

    def block_item(self, iid: str) -> None:
        self.anything_blocked = True
        _bounded_add(self._items, iid, None)
        for key in [k for k in self.parts if k[2] == iid]:
            del self.parts[key]

    # -- both -------------------------------------------------------------------------------

    def is_blocked(self, rid: str | None, iid: str | None) -> bool:
        return (rid is not None and rid in self._cancelled) or (iid is not None and iid in self._items)

    def audio_of_cancelled(self, head: bytes) -> bool:
        """Whether an audio delta, by its first bytes, belongs to a cancelled response."""
        return bool(self._cancelled) and any(needle in head for needle in self._cancelled.values())

    # -- parts ------------------------------------------------------------------------------

    def part_state(self, key: PartKey) -> PartState:
        part = self.parts.get(key)
        if part is None:
            return PartState.NONE
        return PartState.HELD if part.held else PartState.OPEN

    def open_part(self, key: PartKey, part: SessionPart) -> SessionPart | None:
        """Track a new part; the part evicted to make room for it (to flush), if any."""
        evicted = self.parts.popitem(last=False)[1] if len(self.parts) >= MAX_OPEN_PARTS else None
        self.parts[key] = part
        return evicted

    def close_part(self, key: PartKey) -> SessionPart | None:
        return self.parts.pop(key, None)
