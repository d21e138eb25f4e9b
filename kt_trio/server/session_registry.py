"""The gateway's live WebSocket sessions, and the poll that ends those whose key went away.

`SessionRegistry` holds the open sessions (with the expiry of each one's key), wakes waiters
when the set changes (`wait`, no polling), and ends sessions by key name: `keys revoke
--terminate` seen here or announced by another instance (`SharedState.announce_revoked`), and
keys that expire while a session is open. The same poll ends `/ws/events` subscribers of a
revoked or expired key.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

from kt_trio.events.stream import Subscribers
from kt_trio.keys import KeyRing
from kt_trio.session.session import Session
from kt_trio.state.base import SharedState
from kt_trio.wire.frames import CloseCode

# How often live sessions' keys are checked for `revoke --terminate`: a revoked key's sessions
# end within about this long, at the cost of one indexed query per interval.
REVOCATION_POLL_SECS = 1.0


class SessionRegistry:
    """The open sessions of one gateway process."""

    def __init__(self) -> None:
        self.sessions: set[Session] = set()
        # Sessions whose key expires: ended with 1008 "key expired" by the key poll.
        self._expiry: dict[Session, float] = {}
        self._changed = trio.Event()

    def add(self, session: Session, key_expires_at: float | None = None) -> None:
        self.sessions.add(session)
        if key_expires_at is not None:
            self._expiry[session] = key_expires_at
        self._notify()

    def discard(self, session: Session) -> None:
        self.sessions.discard(session)
        self._expiry.pop(session, None)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait(self, predicate: Callable[[int], bool]) -> None:
        """Waits until `predicate(number of open sessions)` holds; no polling."""
        while not predicate(len(self.sessions)):
            await self._changed.wait()

    def terminate_keys(self, names: set[str]) -> None:
        """Every session of these keys ends with 1008 "key revoked"."""
        for session in list(self.sessions):
            if session.key_name in names:
                session.terminate(CloseCode.POLICY_VIOLATION, "key revoked")

    async def poll_revocations(self, keys: KeyRing, subscribers: Subscribers, state: SharedState) -> None:
        """Once a second: sessions of a key revoked with `--terminate` and every subscriber of a
        revoked key end with 1008 "key revoked"; sessions and subscribers of an expired key with
        1008 "key expired". One indexed query per interval, none while no key is in use."""
        while True:
            await trio.sleep(REVOCATION_POLL_SECS)
            now = time.time()
            for session, expires_at in list(self._expiry.items()):
                if expires_at <= now:
                    session.terminate(CloseCode.POLICY_VIOLATION, "key expired")
            keyed = [s for s in subscribers.open if s.key is not None]
            for sub in keyed:
                if sub.key.expires_at is not None and sub.key.expires_at <= now:
                    sub.end(CloseCode.POLICY_VIOLATION, "key expired")
            live = {s.key_name for s in self.sessions if s.key_name}
            if live:
                revoked = await keys.revoked_since(live)
                if revoked:
                    self.terminate_keys(revoked)
                    await state.announce_revoked(revoked)  # other instances act at once
            if keyed:
                gone = await keys.revoked({s.key.name for s in keyed})
                for sub in keyed:
                    if sub.key.name in gone:
                        sub.end(CloseCode.POLICY_VIOLATION, "key revoked")
