"""Upstream health: one circuit breaker per target, and the order in which targets are tried.

The breaker is the state machine DESIGN.md and issue 4 describe, with states named as there:

- ``closed``: dials go through. `failure_threshold` *consecutive* failures (dial refused, TLS
  failure, handshake status >= 500 or 429, timeout, an abnormal upstream close within the first
  seconds: the caller decides what counts) move it to ``open``. A success resets the count.
- ``open``: no dial is attempted; the target is skipped without touching the network, for
  `recovery_timeout_secs` after it opened.
- ``half_open``: after the recovery timeout, exactly one trial dial is let through. Its success
  moves the breaker to ``closed``; its failure back to ``open`` for another recovery period. Any
  other caller while the trial is in flight is refused.

Pure: time is passed in (`now`, from ``trio.current_time()``), so there is no timer task. The
``open → half_open`` transition therefore happens lazily, when the first caller asks after the
timeout has passed; it is reported at that moment.

Every state change produces a `BreakerTransition`, returned by the method that caused it and
passed to `on_transition`, the hand-off point to the session's reporting (events, metrics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

from attrs import frozen

from kt_trio.records import BreakerTransition

BreakerState = Literal["closed", "open", "half_open"]
TransitionCallback = Callable[[BreakerTransition], None]


class SharedBreakerStore(Protocol):
    """Where the cluster's breakers live (`kt_trio.state.breakers.SharedBreakers`)."""

    async def acquire(self, breaker: CircuitBreaker, now: float) -> Permit | None: ...
    async def record_success(self, breaker: CircuitBreaker, permit: Permit, now: float) -> None: ...
    async def record_failure(self, breaker: CircuitBreaker, permit: Permit, now: float, reason: str) -> None: ...
    async def abandon(self, breaker: CircuitBreaker, permit: Permit) -> None: ...


# While a trial is in flight the outcome is usually known within one connect timeout; a refused
# client is told to come back this soon rather than after a full recovery period.
_TRIAL_IN_FLIGHT_RETRY_SECS = 1.0


@frozen
class Permit:
    """Leave to dial a target once. Hand it back with the outcome of that dial.

    `generation` ties the outcome to the breaker state it was issued in: the outcome of a dial
    that started before the breaker last changed state is stale and does not move it (a slow
    success from before the breaker opened must not close it; a slow failure from before it
    closed must not count against the fresh closed period).
    """

    target: str
    generation: int
    trial: bool
    # Issued by the cluster's breaker in Redis (`kt_trio.state.breakers`): its outcome goes there.
    shared: bool = False
    # False when a success would change nothing there (closed, no failures counted when issued),
    # which saves the cluster a round trip per session.
    success_matters: bool = True


class CircuitBreaker:
    """The breaker of one upstream target. See the module docstring for the state machine."""

    __slots__ = (
        "_failures",
        "_generation",
        "_on_transition",
        "_opened_at",
        "_state",
        "_trial_started",
        "failure_threshold",
        "recovery_timeout_secs",
        "target",
        "trial_timeout_secs",
    )

    def __init__(
        self,
        target: str,
        failure_threshold: int = 5,
        recovery_timeout_secs: float = 30.0,
        *,
        on_transition: TransitionCallback | None = None,
        trial_timeout_secs: float | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold!r}")
        if recovery_timeout_secs < 0:
            raise ValueError(f"recovery_timeout_secs must be >= 0, got {recovery_timeout_secs!r}")
        self.target = target
        self.failure_threshold = failure_threshold
        self.recovery_timeout_secs = float(recovery_timeout_secs)
        # A trial whose outcome is never reported (its task was cancelled between `acquire` and
        # `record_*`, and nobody called `abandon`) must not wedge the breaker half-open for ever:
        # after this long another caller may run a new trial.
        self.trial_timeout_secs = (
            float(trial_timeout_secs) if trial_timeout_secs is not None else max(self.recovery_timeout_secs, 1.0)
        )
        self._on_transition = on_transition
        self._state: BreakerState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_started: float | None = None
        self._generation = 0

    # -- reading --------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The state as of the last call (``open`` turns ``half_open`` only when someone asks)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def would_allow(self, now: float) -> bool:
        """Whether `acquire(now)` would give a permit; changes nothing (for ordering candidates)."""
        if self._state == "closed":
            return True
        if self._state == "open":
            return now >= self._opened_at + self.recovery_timeout_secs
        return self._trial_free(now)

    def retry_after(self, now: float) -> float:
        """Seconds until this target may be dialled again (0 when it may be now)."""
        if self._state == "open":
            return max(0.0, self._opened_at + self.recovery_timeout_secs - now)
        if self._state == "half_open" and not self._trial_free(now):
            return _TRIAL_IN_FLIGHT_RETRY_SECS
        return 0.0

    # -- asking ---------------------------------------------------------------------------------

    def acquire(self, now: float) -> Permit | None:
        """A permit to dial now, or None: open, or half-open with its one trial in flight."""
        if self._state == "open":
            if now < self._opened_at + self.recovery_timeout_secs:
                return None
            self._move("half_open", "recovery timeout elapsed")
        if self._state == "half_open":
            if not self._trial_free(now):
                return None
            self._trial_started = now
            return Permit(self.target, self._generation, trial=True)
        return Permit(self.target, self._generation, trial=False)

    def allow(self, now: float) -> bool:
        """`acquire` for callers that report outcomes without a permit (see `record_*`)."""
        return self.acquire(now) is not None

    # -- reporting outcomes -----------------------------------------------------------------------

    def record_success(self, now: float, permit: Permit | None = None) -> BreakerTransition | None:
        """The dial succeeded. Without a permit, the outcome applies to the current state."""
        if permit is not None and permit.generation != self._generation:
            return None
        if self._state == "closed":
            self._failures = 0
            return None
        if self._state == "half_open":
            return self._move("closed", "trial dial succeeded")
        return None  # open: a success can only be a stale outcome; the recovery period stands.

    def record_failure(self, now: float, reason: str, permit: Permit | None = None) -> BreakerTransition | None:
        """The dial failed for `reason`. Without a permit, applies to the current state."""
        if permit is not None and permit.generation != self._generation:
            return None
        if self._state == "closed":
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._opened_at = now
                return self._move("open", f"{self._failures} consecutive failures; last: {reason}")
            return None
        if self._state == "half_open":
            self._opened_at = now
            return self._move("open", f"trial dial failed: {reason}")
        return None  # already open: do not extend the recovery period with stale outcomes.

    def abandon(self, permit: Permit) -> None:
        """The dial never happened (its task was cancelled): free the trial for the next caller."""
        if permit.trial and permit.generation == self._generation and self._state == "half_open":
            self._trial_started = None

    def mirror(self, state: str, now: float, open_for: float, reason: str) -> BreakerTransition | None:
        """Take the cluster's state (read from shared state) as this breaker's own; an open
        breaker stays open for `open_for` more seconds. Reports the change, if any."""
        if state not in ("closed", "open", "half_open") or state == self._state:
            if state == "open":
                self._opened_at = now - self.recovery_timeout_secs + open_for
            return None
        transition = self._move(state, reason)  # type: ignore[arg-type]
        if state == "open":
            self._opened_at = now - self.recovery_timeout_secs + open_for
        return transition

    # -- internals --------------------------------------------------------------------------------

    def _trial_free(self, now: float) -> bool:
        return self._trial_started is None or now >= self._trial_started + self.trial_timeout_secs

    def _move(self, to: BreakerState, reason: str) -> BreakerTransition:
        transition = BreakerTransition(self.target, self._state, to, reason)
        self._state = to
        self._generation += 1
        self._failures = 0
        self._trial_started = None
        if self._on_transition is not None:
            self._on_transition(transition)
        return transition


class UpstreamHealth:
    """The breakers of every target, and which targets to try for a session, in order.

    One object per gateway, shared by all sessions: sessions ask it, they do not keep counters
    of their own. Breakers are created on first use per target id; ids come from the
    configuration, so the map is bounded by the number of configured targets.
    """

    __slots__ = ("_breakers", "_on_transition", "failure_threshold", "recovery_timeout_secs", "shared")

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout_secs: float = 30.0,
        *,
        on_transition: TransitionCallback | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout_secs = recovery_timeout_secs
        self._on_transition = on_transition
        self._breakers: dict[str, CircuitBreaker] = {}
        # Set with `state.backend: redis`: the cluster's breakers (`kt_trio.state.breakers`),
        # consulted by the `*_shared` methods; the local breakers mirror them.
        self.shared: SharedBreakerStore | None = None

    def breaker(self, target_id: str) -> CircuitBreaker:
        b = self._breakers.get(target_id)
        if b is None:
            b = CircuitBreaker(
                target_id,
                self.failure_threshold,
                self.recovery_timeout_secs,
                on_transition=self._on_transition,
            )
            self._breakers[target_id] = b
        return b

    def state(self, target_id: str) -> BreakerState:
        return self.breaker(target_id).state

    def reconfigure(self, failure_threshold: int, recovery_timeout_secs: float, target_ids: Iterable[str]) -> None:
        """A config reload: the breakers of targets that still exist keep their state (an open
        one stays open) under the new thresholds; those of removed targets are dropped."""
        keep = set(target_ids)
        self.failure_threshold = failure_threshold
        self.recovery_timeout_secs = recovery_timeout_secs
        self._breakers = {tid: b for tid, b in self._breakers.items() if tid in keep}
        for b in self._breakers.values():
            b.failure_threshold = failure_threshold
            b.recovery_timeout_secs = float(recovery_timeout_secs)
            b.trial_timeout_secs = max(b.recovery_timeout_secs, 1.0)  # as a new breaker derives it

    def candidates(
        self,
        primary_target_id: str,
        same_model_ids: Iterable[str],
        fallback_ids: Iterable[str],
        now: float,
    ) -> list[str]:
        """Targets to try in order: the primary, other targets serving the same model, then the
        primary's `providers.fallback` list; each once, skipping those whose breaker refuses now.

        This only reads the breakers. Take a permit with `acquire` just before each dial: a
        half-open target's one trial may have been taken by another session in between, in which
        case `acquire` returns None and the caller moves on to the next candidate.
        """
        ordered = dict.fromkeys([primary_target_id, *same_model_ids, *fallback_ids])
        return [t for t in ordered if self.breaker(t).would_allow(now)]

    def acquire(self, target_id: str, now: float) -> Permit | None:
        return self.breaker(target_id).acquire(now)

    def record_success(self, permit: Permit, now: float) -> BreakerTransition | None:
        return self.breaker(permit.target).record_success(now, permit)

    def record_failure(self, permit: Permit, now: float, reason: str) -> BreakerTransition | None:
        return self.breaker(permit.target).record_failure(now, reason, permit)

    def abandon(self, permit: Permit) -> None:
        self.breaker(permit.target).abandon(permit)

    # -- the cluster's breakers (await these where a dial is decided) -------------------------------

    async def acquire_shared(self, target_id: str, now: float) -> Permit | None:
        if self.shared is None:
            return self.acquire(target_id, now)
        return await self.shared.acquire(self.breaker(target_id), now)

    async def record_success_shared(self, permit: Permit, now: float) -> None:
        if self.shared is None:
            self.record_success(permit, now)
        else:
            await self.shared.record_success(self.breaker(permit.target), permit, now)

    async def record_failure_shared(self, permit: Permit, now: float, reason: str) -> None:
        if self.shared is None:
            self.record_failure(permit, now, reason)
        else:
            await self.shared.record_failure(self.breaker(permit.target), permit, now, reason)

    async def abandon_shared(self, permit: Permit) -> None:
        if self.shared is None:
            self.abandon(permit)
        else:
            await self.shared.abandon(self.breaker(permit.target), permit)

    def retry_after(self, target_ids: Iterable[str], now: float) -> int:
        """The `Retry-After` value (whole seconds, >= 1) for a 503 when every candidate failed:
        the time until the earliest of them turns half-open, rounded up.

        Never 0: when no candidate is open (they were tried and failed without opening their
        breakers yet), a client told to retry at once would just hammer a failing upstream.
        """
        waits = [self.breaker(t).retry_after(now) for t in target_ids]
        if not waits:
            return 1
        return max(1, math.ceil(min(waits)))
