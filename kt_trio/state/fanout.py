"""What crosses instances by Redis pub/sub: the event stream, and revoked keys.

Events: while some other instance has a `/ws/events` subscriber, every message this instance
publishes on its hub is also published on `kt:events` (batched: one pipeline per wake-up), and
every message another instance publishes there is delivered into this hub's rings. The outgoing
buffer is a bounded deque: a session never waits on Redis; when Redis is slow or away the oldest
events are dropped and counted, as a slow `/ws/events` subscriber's are.

Who listens: an instance with at least one subscriber keeps itself in the ZSET `kt:listeners`
(member = instance, score = expiry on Redis's clock), re-asserted every `LISTENERS_SECS`; every
instance reads there how many *others* listen and publishes only while that is more than none.
Most gateways have no dashboard open most of the time, and then a session's events cost no
Redis round trip at all. An instance whose first subscriber arrives says so at once on
`kt:listening` (the other instances start publishing without waiting for their next read), and
its `/ws/events` door answers 101 only after that (`EventHub.listening_ready`), so nothing
another instance publishes after the subscriber is connected is missed (an instance is
subscribed before it reports ready, and reads the set again after every re-subscription; a
listener announced while Redis was unreachable is found by the next read, within a second). One that dies leaves
the set when its entry expires (`LISTENER_TTL_MS`): until then the others publish for nobody.

Revocations: the authoritative record is the Redis SET `kt:revoked` (plus the key store itself,
which the gateway polls); a PUBLISH on `kt:revocations` is only a hint that makes the other
instances act at once. Pub/sub loses what is published while a subscriber is reconnecting, so
after every (re)subscription the SET is read again and acted on.

coredis's subscriber, as measured (shared/research/scale-out.md): its `async for` may end
silently at a reconnect, so it runs inside a loop; entering it while Redis is down would block
for ever with the default retry policy, so entry has a deadline and the loop waits for the link
to be up first; leaving it costs `unsubscription_timeout`, lowered from 100 ms.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import coredis.exceptions
import trio
from coredis.patterns.pubsub import PubSub
from coredis.retry import CompositeRetryPolicy, ConstantRetryPolicy

from kt_trio.events.hub import EventHub
from kt_trio.state.base import StateUnavailable
from kt_trio.state.breakers import NOW_MS
from kt_trio.state.link import UNREACHABLE, RedisLink

log = logging.getLogger("kt_trio.state")

EVENTS_CHANNEL = "kt:events"
REVOCATIONS_CHANNEL = "kt:revocations"
REVOKED_SET = "kt:revoked"
LISTENERS_SET = "kt:listeners"
LISTENING_CHANNEL = "kt:listening"
LISTENERS_SECS = 1.0
LISTENER_TTL_MS = 5000  # five missed re-assertions: the instance is gone
# How long the `/ws/events` door waits for this instance to be listed before it answers anyway.
LISTED_TIMEOUT_SECS = 1.0

# KEYS[1] = LISTENERS_SET; ARGV: instance, ttl_ms, listening (0|1), channel -> other listeners.
# A newly listed instance is announced on the channel, so the others need not wait for a read.
LISTEN = (
    NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local listening = tonumber(ARGV[3]) == 1
if listening then
  if redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[4], ARGV[1]) end
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
local n = redis.call('ZCARD', KEYS[1])
if listening then n = n - 1 end
return n
"""
)
# Events waiting to be published: a second or two of a busy gateway's events. Full: the oldest go.
OUTBOX_CAPACITY = 4096
PUBLISH_BATCH = 256
SEP = "\x1f"  # unit separator: never in an instance id, an event type, a session id or a team
ENTER_TIMEOUT_SECS = 2.0
_SUBSCRIPTION_LOST: tuple[type[Exception], ...] = (
    *UNREACHABLE,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
)
RESUBSCRIBE_PAUSE_SECS = 0.2


async def publish_revoked(link: RedisLink, names: Iterable[str]) -> None:
    """Adds the keys to REVOKED_SET and announces each on REVOCATIONS_CHANNEL (one pipeline).
    Raises `StateUnavailable`. Used by instances and by the `keys revoke` command."""
    names = sorted(set(names))
    if not names:
        return

    async def pipeline() -> None:
        async with link.client.pipeline(transaction=False) as p:
            p.sadd(REVOKED_SET, names)
            for name in names:
                p.publish(REVOCATIONS_CHANNEL, name)

    await link.call(pipeline)


class Fanout:
    def __init__(
        self,
        link: RedisLink,
        instance: str,
        hub: EventHub,
        terminate: Callable[[set[str]], None],
    ) -> None:
        self.link = link
        self.instance = instance
        self.hub = hub
        self._terminate = terminate
        self._outbox: deque[str] = deque(maxlen=OUTBOX_CAPACITY)
        self._wakeup = trio.Event()
        self.dropped = 0
        self.subscribed = 0  # how many times the subscription was (re)established
        self._resync = trio.Event()
        link.when_up(lambda: self._resync.set())
        # Who listens (see the module docstring): `hub.relay` is set only while others do.
        self.remote_listeners = False
        self.listed = False  # this instance is in LISTENERS_SET (as of its last successful write)
        self._hints = 0  # announcements of new listeners received (they outrank an older read)
        # Set once subscribed (or once that failed): the gateway reports ready only after it, so an
        # instance never misses the announcement of a listener that arrives just after its start.
        self.ready = trio.Event()
        self._listen = link.client.register_script(LISTEN)
        self._listeners_changed = trio.Event()
        self._listers_done = trio.Event()
        link.when_up(lambda: self._listeners_changed.set())
        hub.on_listening = lambda listening: self._listeners_changed.set()
        hub.listening_ready = self.wait_listed

    # -- who listens ------------------------------------------------------------------------------

    def _set_remote(self, listening: bool) -> None:
        self.remote_listeners = listening
        self.hub.relay = self._enqueue if listening else None

    async def listeners(self) -> None:
        """Keeps this instance's entry in LISTENERS_SET and `remote_listeners` up to date."""
        while True:
            await self._refresh_listeners()
            with trio.move_on_after(LISTENERS_SECS):
                await self._listeners_changed.wait()
            self._listeners_changed = trio.Event()

    async def _refresh_listeners(self) -> None:
        listening = self.hub.subscriber_count > 0
        if self.link.available:
            args: list[Any] = [self.instance, LISTENER_TTL_MS, int(listening), LISTENING_CHANNEL]
            hints = self._hints
            try:
                others: Any = await self.link.call(lambda: self._listen([LISTENERS_SET], args))
            except StateUnavailable:
                pass
            else:
                self.listed = listening
                # An announcement that arrived during the read may be newer than its answer.
                self._set_remote(int(others) > 0 or self._hints != hints)
        done, self._listers_done = self._listers_done, trio.Event()
        done.set()

    async def wait_listed(self) -> None:
        """Returns once this instance is listed (or Redis cannot say so within a bound)."""
        with trio.move_on_after(LISTED_TIMEOUT_SECS):
            while self.link.available and not self.listed and self.hub.subscriber_count:
                self._listeners_changed.set()
                await self._listers_done.wait()

    # -- events out -------------------------------------------------------------------------------

    def _enqueue(self, event_type: str, session_id: str | None, team: str | None, text: str) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            self.dropped += 1
        self._outbox.append(SEP.join((self.instance, event_type, session_id or "", team or "", text)))
        self._wakeup.set()

    async def publisher(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            while self._outbox:
                if not self.link.available:
                    self.dropped += len(self._outbox)
                    self._outbox.clear()
                    break
                batch = [self._outbox.popleft() for _ in range(min(PUBLISH_BATCH, len(self._outbox)))]
                await self._publish(batch)

    async def _publish(self, batch: list[str]) -> None:
        async def pipeline() -> None:
            async with self.link.client.pipeline(transaction=False) as p:
                for frame in batch:
                    p.publish(EVENTS_CHANNEL, frame)

        try:
            await self.link.call(pipeline)
        except StateUnavailable:
            self.dropped += len(batch)

    # -- revocations out --------------------------------------------------------------------------

    async def announce_revoked(self, names: Iterable[str]) -> None:
        """Record the keys as revoked-with-terminate and tell every instance now."""
        try:
            await publish_revoked(self.link, names)
        except StateUnavailable:
            pass

    # -- everything in ----------------------------------------------------------------------------

    async def subscriber(self) -> None:
        retry = CompositeRetryPolicy(
            ConstantRetryPolicy((coredis.exceptions.ConnectionError,), retries=None, delay=RESUBSCRIBE_PAUSE_SECS),
            ConstantRetryPolicy((TimeoutError,), retries=2, delay=0.1),
        )
        while True:
            if not self.link.available:
                self.ready.set()  # nothing to wait for at startup: Redis is down
            await self.link.wait_up()
            pubsub = PubSub(
                self.link.client.connection_pool,
                ignore_subscribe_messages=True,
                retry_policy=retry,
                channels=[EVENTS_CHANNEL, REVOCATIONS_CHANNEL, LISTENING_CHANNEL],
                unsubscription_timeout=0.01,
            )
            try:
                # The deadline bounds entering only (it blocks for ever while Redis is down); it
                # is lifted once subscribed. One scope around the whole `async with`: coredis
                # runs a task group inside, which must be entered and left in the same scope.
                with trio.CancelScope(deadline=trio.current_time() + ENTER_TIMEOUT_SECS) as entering:
                    async with pubsub as entered:
                        entering.deadline = math.inf
                        self.subscribed += 1
                        await self._reread_revoked()
                        await self._refresh_listeners()  # what was announced while unsubscribed
                        self.ready.set()
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(self._resync_on_recovery)
                            async for message in entered:
                                self._on_message(message["channel"], message["data"])
                            nursery.cancel_scope.cancel()
            # coredis's task groups wrap what they raise; a lost connection (or the subscription's
            # own streams closing as it is torn down) ends this round, anything else is a bug.
            except* _SUBSCRIPTION_LOST as group:
                log.debug("event subscription interrupted: %r", group.exceptions[0])
            self.ready.set()  # tried once at least: startup goes on without it
            await trio.sleep(RESUBSCRIBE_PAUSE_SECS)

    async def _resync_on_recovery(self) -> None:
        while True:
            await self._resync.wait()
            self._resync = trio.Event()
            await self._reread_revoked()

    async def _reread_revoked(self) -> None:
        try:
            revoked = await self.link.call(lambda: self.link.client.smembers(REVOKED_SET))
        except StateUnavailable:
            return
        if revoked:
            self._terminate({str(name) for name in revoked})

    def _on_message(self, channel: object, data: object) -> None:
        if not isinstance(data, str):
            return
        if channel == REVOCATIONS_CHANNEL:
            self._terminate({data})
            return
        if channel == LISTENING_CHANNEL:
            if data != self.instance:
                self._hints += 1
                self._set_remote(True)
            return
        parts = data.split(SEP, 4)
        if len(parts) != 5 or parts[0] == self.instance:
            return
        _, event_type, session_id, team, text = parts
        self.hub.deliver(event_type, session_id or None, team or None, text)
