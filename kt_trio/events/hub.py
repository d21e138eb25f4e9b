"""Fan-out of records to live event stream subscribers, without ever blocking the publisher.

`EventHub.publish(session_id, record)` is a `Reporter` sink (`kt_trio.session.reporting`): it
runs inside a session's task, synchronously, so it must not await and must not wait on any
subscriber. Each subscriber owns a ring of `channel_capacity` encoded messages; publishing
appends to every matching ring and sets the subscriber's wake-up event, O(subscribers) and
nothing more. A ring that is full drops its *oldest* message and counts it; the next time that
subscriber reads it first receives one `lagged` message with the exact number it missed, then
the newest messages (DESIGN.md "Event stream message": a subscriber that falls behind loses the
oldest events and is told how many; it never slows a session down).

Why not a `trio.MemoryChannel`: a full channel either blocks the sender (a session would wait on
a dashboard) or refuses the newest message (`send_nowait` raises `WouldBlock`), and there is no
way to evict the oldest item; a deque with `maxlen` does exactly that in O(1).

Each message is JSON-encoded once per publish, lazily (only if some subscriber wants it), and the
same `str` is shared by every ring it lands in.

Across instances (`state.backend: redis`): `relay`, when set, is handed every encoded message this
instance publishes (`kt_trio.state.fanout` sends them to the other instances; it sets `relay`
only while some other instance has a subscriber, and learns when this one gains its first or
loses its last through `on_listening`), and `deliver` puts a message another instance
published into this one's rings, filtered the same way.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

import trio

from kt_trio.events.messages import EVENT_TYPES, Publishable, encode, lagged_payload, to_events
from kt_trio.records import MessageSeen, SessionStarted, SessionSummary


class Subscription:
    """One subscriber's bounded ring and filters. Use as a context manager so it always leaves the hub.

    `types`: the event types wanted (None: all). `session_id`: only events of that session (events
    that belong to no session, circuit breaker and system events, are then not delivered).
    `team`: only events of that team's sessions (a team key's subscription, issue 7); events that
    belong to no team, including circuit breaker and system events, are then not delivered.
    A `lagged` message is delivered whatever the filters: it says the view is incomplete.
    """

    __slots__ = ("_buffer", "_closed", "_hub", "_missed", "_wakeup", "dropped", "session_id", "team", "types")

    def __init__(
        self,
        hub: EventHub,
        capacity: int,
        types: frozenset[str] | None,
        session_id: str | None,
        team: str | None = None,
    ) -> None:
        self._hub = hub
        # Bounded by `channel_capacity` (1024 by default): a subscriber that stops reading costs
        # at most that many shared strings, and eviction of the oldest is deque's own O(1) append.
        self._buffer: deque[str] = deque(maxlen=capacity)
        self._missed = 0  # dropped since the last read: the next `lagged` message's count
        self._wakeup = trio.Event()
        self._closed = False
        self.dropped = 0  # dropped over the subscription's life, for tests and diagnostics
        self.types = types
        self.session_id = session_id
        self.team = team

    def wants(self, event_type: str, session_id: str | None, team: str | None = None) -> bool:
        if self.types is not None and event_type not in self.types:
            return False
        if self.team is not None and self.team != team:
            return False
        return self.session_id is None or self.session_id == session_id

    def _offer(self, text: str) -> None:
        """Sync, never blocks: called from `EventHub.publish` inside a session's task."""
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            # deque(maxlen) evicts the leftmost (oldest) item on append: count it before it goes.
            self._missed += 1
            self.dropped += 1
            self._hub.dropped_total += 1
        buffer.append(text)
        self._wakeup.set()

    @property
    def pending(self) -> int:
        """Messages waiting in the ring (not counting a pending `lagged` notice)."""
        return len(self._buffer)

    def receive_nowait(self) -> str | None:
        """The next message, or None when nothing is waiting. A pending `lagged` notice comes first."""
        if self._missed:
            missed, self._missed = self._missed, 0
            return encode("lagged", lagged_payload(missed), self._hub.clock())
        if self._buffer:
            return self._buffer.popleft()
        return None

    async def receive(self) -> str:
        """The next message; waits for one. Raises `trio.EndOfChannel` once closed and drained."""
        while True:
            text = self.receive_nowait()
            if text is not None:
                await trio.lowlevel.checkpoint()
                return text
            if self._closed:
                raise trio.EndOfChannel
            await self._wakeup.wait()
            self._wakeup = trio.Event()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Leaves the hub; a reader drains what is buffered, then gets `EndOfChannel`. Idempotent."""
        if not self._closed:
            self._closed = True
            hub = self._hub
            if self in hub._subscribers:
                del hub._subscribers[self]
                if not hub._subscribers and hub.on_listening is not None:
                    hub.on_listening(False)
            self._wakeup.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Publishes records to subscribers. See the module docstring for the buffering contract."""

    def __init__(self, channel_capacity: int = 1024, *, clock: Callable[[], float] = time.time) -> None:
        if channel_capacity < 1:
            raise ValueError("channel_capacity must be at least 1")
        self.channel_capacity = channel_capacity
        self.clock = clock  # wall clock for the RFC 3339 `ts`; injectable for tests
        # A dict as an ordered set: insertion order makes delivery order deterministic in tests.
        self._subscribers: dict[Subscription, None] = {}
        self._closed = False
        self.dropped_total = 0  # every message any subscriber lost (kt_event_dropped_total)
        # The team of each live session that has one, from its SessionStarted to its
        # SessionSummary: most records of a session (usage, decisions, budget) do not carry the
        # team, and a team subscriber must still see them. One entry per live team session.
        self._teams: dict[str, str] = {}
        # (event type, session id, team, encoded message) -> None: the cross-instance fan-out.
        # Sync and non-blocking, like a subscriber's ring.
        self.relay: Callable[[str, str | None, str | None, str], None] | None = None
        # Told True when the first subscriber arrives and False when the last leaves: the fan-out
        # asks the other instances for their events only while somebody here listens.
        self.on_listening: Callable[[bool], None] | None = None
        # Awaited by the `/ws/events` door before it answers 101, so that the other instances
        # already publish to this one when the subscriber's first session starts elsewhere.
        self.listening_ready: Callable[[], Awaitable[None]] | None = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(
        self, types: Iterable[str] | None = None, session_id: str | None = None, team: str | None = None
    ) -> Subscription:
        """A new subscription; close it (or use it as a context manager) when done.

        Unknown type names raise ValueError. After `close()`, the subscription is born closed.
        """
        wanted = None
        if types is not None:
            wanted = frozenset(types)
            unknown = wanted - EVENT_TYPES
            if unknown:
                raise ValueError(f"unknown event type(s): {', '.join(sorted(unknown))}")
        sub = Subscription(self, self.channel_capacity, wanted, session_id, team)
        if self._closed:
            sub._closed = True
        else:
            self._subscribers[sub] = None
            if len(self._subscribers) == 1 and self.on_listening is not None:
                self.on_listening(True)
        return sub

    def publish(self, session_id: str | None, record: Publishable) -> None:
        """The Reporter sink: sync, never awaits, O(subscribers) per message."""
        if isinstance(record, MessageSeen):
            return  # never on the stream (kt_trio.events.messages); one per relayed message
        sid = session_id if session_id is not None else getattr(record, "session_id", None)
        team = self._team_of(sid, record)  # kept up to date even with nobody listening
        relay = self.relay
        if not self._subscribers and relay is None:
            return  # most of the time: building payloads nobody reads costs ~30 µs a record
        events = to_events(session_id, record)
        now = self.clock()
        for event_type, payload in events:
            text: str | None = None
            if relay is not None:
                text = encode(event_type, payload, now)
                relay(event_type, sid, team, text)
            for sub in self._subscribers:
                if sub.wants(event_type, sid, team):
                    if text is None:
                        text = encode(event_type, payload, now)  # once per publish, shared
                    sub._offer(text)

    def deliver(self, event_type: str, session_id: str | None, team: str | None, text: str) -> None:
        """A message another instance published: into every matching ring, never relayed back."""
        for sub in self._subscribers:
            if sub.wants(event_type, session_id, team):
                sub._offer(text)

    def _team_of(self, sid: str | None, record: Publishable) -> str | None:
        team = getattr(record, "team", None)
        if sid is None:
            return team
        if isinstance(record, SessionStarted):
            if team is not None:
                self._teams[sid] = team
        elif isinstance(record, SessionSummary):
            return self._teams.pop(sid, team)
        return team if team is not None else self._teams.get(sid)

    def close(self) -> None:
        """Gateway shutdown: every subscription drains what it has, then ends."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.close()
