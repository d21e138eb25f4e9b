"""Per-session message rate limiting: a token bucket over client → provider messages.

Pure: the caller passes `now` (``trio.current_time()``), so tests drive it with plain numbers
or trio's MockClock, and the bucket never owns a timer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

from attrs import frozen

# Seconds of traffic the bucket may absorb at once. See `TokenBucket` for why ten.
BURST_WINDOW_SECS = 10.0

# A refill computed from float time may land a hair under a whole token at the exact instant
# `delay_until` promised one; this tolerance keeps that promise.
_EPSILON = 1e-9


class TokenBucket:
    """A token bucket refilled continuously at `rate_per_minute / 60` tokens per second.

    Burst: by default ``max(1, ceil(rate_per_minute / 6))`` tokens, i.e. ten seconds' worth of
    the per-minute allowance. Why ten seconds: a real client's traffic is bursty at the start of
    a turn (`session.update`, `conversation.item.create`, `response.create` and a run of audio
    appends arrive back to back), so a bucket of one or two tokens would refuse well-behaved
    clients; a bucket of the whole minute would let a client fire its entire minute's allowance
    in one instant, which is the flood the limit exists to stop. Ten seconds absorbs a turn's
    burst while keeping any one-second spike to about a sixth of the minute's budget. Pass
    `burst` to override.

    The bucket starts full at the first `now` it sees, so a session's opening burst is allowed.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate_per_sec")

    def __init__(self, rate_per_minute: float, burst: int | None = None) -> None:
        if not rate_per_minute > 0:
            raise ValueError(f"rate_per_minute must be > 0, got {rate_per_minute!r}")
        if burst is None:
            burst = max(1, math.ceil(rate_per_minute * BURST_WINDOW_SECS / 60.0))
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate_per_sec: float = rate_per_minute / 60.0
        self.burst: int = burst
        self._tokens: float = float(burst)
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
            return
        # A clock that went backwards (it cannot with trio, but a caller may mix clocks) must not
        # drain the bucket: elapsed time is never negative.
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_sec)
        self._last = max(self._last, now)

    @property
    def tokens(self) -> float:
        """Tokens as of the last call (debt shows as a negative number); for tests and metrics."""
        return self._tokens

    def try_take(self, now: float) -> bool:
        """Take one token if one is available now; False (and nothing taken) otherwise."""
        self._refill(now)
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens -= 1.0
            return True
        return False

    def delay_until(self, now: float) -> float:
        """The time (on the same clock as `now`) at which one whole token will be available."""
        self._refill(now)
        missing = 1.0 - self._tokens
        if missing <= _EPSILON:
            return now
        return now + missing / self.rate_per_sec

    def reserve(self, now: float) -> float:
        """Take one token now, going into debt if needed; return when that token is really due.

        This is what `mode: delay` uses: the message is admitted now and its sender sleeps until
        the returned time before forwarding it. Debt stays bounded because the one reader of a
        session (the client pump) does not read the next message until it has waited: the wait
        is backpressure on the client's socket, not a queue of held messages.
        """
        due = self.delay_until(now)
        self._tokens -= 1.0
        return due


RateAction = Literal["allow", "reject", "delay"]


@frozen
class RateDecision:
    """What to do with one client message. `until` is set only for `delay` (sleep until then)."""

    action: RateAction
    until: float | None = None


_ALLOW = RateDecision("allow")
_REJECT = RateDecision("reject")


class MessageRateLimiter:
    """One session's limit on client → provider messages (`providers.rate_limit.per_connection`).

    `mode="reject"`: a message over the limit is not forwarded and the client gets a
    `rate_limit_exceeded` error (`protocol.errors.rate_limit_error_event`, built by the session
    from this decision). `mode="delay"`: the message is held by
    its sender until the bucket allows it. Types in `exclude_types` are never counted (a
    deployment may exempt `input_audio_buffer.append` so live audio is never cut); everything
    else counts, audio appends included, and so does a message whose type could not be sniffed
    (`event_type=None`), so garbage is no way around the limit.
    """

    __slots__ = ("_bucket", "exclude_types", "mode")

    def __init__(
        self,
        messages_per_minute: float,
        mode: Literal["reject", "delay"] = "reject",
        exclude_types: Iterable[str] = (),
        *,
        burst: int | None = None,
    ) -> None:
        if mode not in ("reject", "delay"):
            raise ValueError(f"mode must be 'reject' or 'delay', got {mode!r}")
        self.mode = mode
        self.exclude_types: frozenset[str] = frozenset(exclude_types)
        self._bucket = TokenBucket(messages_per_minute, burst)

    @property
    def bucket(self) -> TokenBucket:
        return self._bucket

    def check(self, event_type: str | None, now: float) -> RateDecision:
        """Decide one message. Call once per client message, before forwarding it."""
        if event_type is not None and event_type in self.exclude_types:
            return _ALLOW
        if self.mode == "reject":
            return _ALLOW if self._bucket.try_take(now) else _REJECT
        due = self._bucket.reserve(now)
        if due <= now:
            return _ALLOW
        return RateDecision("delay", due)
