"""`bot-detector`: session-level signals that the client is a script, not a person.

Signals (weights combine by noisy-OR, like the injection score). Every weight is at least 0.56,
so any two of them together score at least 1 - 0.44² = 0.8064, over the schema's default
threshold 0.8, while none is over 0.6 alone: no single signal flags a session, any two do.

- `no_user_agent` (0.56) / `scripted_user_agent` (0.56): no User-Agent, or one of the HTTP
  tools people script with (curl, wget, python-requests, Go's and Java's default clients,
  headless browsers, declared crawlers). Server-side SDKs (openai-python, websockets) are not
  counted: calling a real-time API from a backend is this gateway's normal use.
- `inhuman_cadence` (0.6): the last `_CADENCE_N` text events (not audio) arrived at intervals
  that are machine-regular (coefficient of variation < 0.1) or all under 150 ms.
- `repeated_messages` (0.56): the same text sent `_REPEATS` or more times in the recent window.
- `session_burst` (0.6): more than `burst_sessions` sessions opened from one key (or IP) within
  `burst_window_secs` (defaults 10 in 10 s). This one needs state across sessions; it lives in
  the `BurstTracker` the chain owns (trio runs one thread, so no lock is needed).

Audio appends are never counted: their cadence is the microphone's, regular by design.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque

from kt_trio.config.schema import BotDetectorSettings
from kt_trio.policies.base import CommonSettings, Finding, combine, common_settings

NAME = "bot-detector"

_SCRIPTED_UA = re.compile(
    r"curl/|wget/|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|okhttp|java/|apache-httpclient|"
    r"libwww-perl|scrapy|headlesschrome|phantomjs|selenium|puppeteer|playwright|httpie|postmanruntime|"
    r"\bbot\b|crawler|spider",
    re.IGNORECASE,
)
# Signal weights (see the module docstring for why each is in 0.56..0.6).
_W_UA = 0.56
_W_CADENCE = 0.6
_W_REPEAT = 0.56
_W_BURST = 0.6
_CADENCE_N = 8
_REPEAT_WINDOW = 20
_REPEATS = 3
_MAX_TRACKED_KEYS = 10_000  # bounded memory for the cross-session burst tracker


class BurstTracker:
    """Session start times per key, shared by every session of one chain."""

    def __init__(self, window: float, limit: int) -> None:
        self.window = window
        self.limit = limit
        self._starts: OrderedDict[str, deque[float]] = OrderedDict()

    def opened(self, key: str, now: float) -> int:
        """Record a session start; how many started under `key` within the window (this one included)."""
        q = self._starts.get(key)
        if q is None:
            q = deque(maxlen=self.limit * 4)
            self._starts[key] = q
            if len(self._starts) > _MAX_TRACKED_KEYS:
                self._starts.popitem(last=False)
        else:
            self._starts.move_to_end(key)
        q.append(now)
        while q and q[0] < now - self.window:
            q.popleft()
        return len(q)


def _product(fixed: dict[str, float]) -> float:
    """`combine`'s running product over the fixed signals, in the same order."""
    p = 1.0
    for w in fixed.values():
        p *= 1.0 - w
    return p


class BotDetector:
    name = NAME

    def __init__(self, settings: BotDetectorSettings | None = None) -> None:
        settings = settings or BotDetectorSettings()
        self.settings: CommonSettings = common_settings(settings)
        self.threshold = settings.threshold
        self.burst = BurstTracker(settings.burst_window_secs, settings.burst_sessions)

    def new_session(self, *, user_agent: str | None, key: str) -> BotSession:
        return BotSession(self, user_agent=user_agent, key=key)


class BotSession:
    """Per-session cadence and repetition state; a few hundred bytes, bounded by the deques."""

    __slots__ = (
        "_fixed",
        "_fixed_p",
        "_gaps",
        "_hashes",
        "_key",
        "_last",
        "_last_finding",
        "_last_key",
        "_last_time",
        "_opened",
        "_sum",
        "_sumsq",
        "detector",
        "new",
    )

    def __init__(self, det: BotDetector, *, user_agent: str | None, key: str) -> None:
        self.detector = det
        self._key = key
        self._opened = False
        fixed: dict[str, float] = {}
        if not user_agent or not user_agent.strip():
            fixed["no_user_agent"] = _W_UA
        elif _SCRIPTED_UA.search(user_agent):
            fixed["scripted_user_agent"] = _W_UA
        self._fixed = fixed
        self._fixed_p = _product(fixed)
        self._gaps: deque[float] = deque(maxlen=_CADENCE_N)
        self._sum = 0.0
        self._sumsq = 0.0
        self._last_time: float | None = None
        self._hashes: deque[int] = deque(maxlen=_REPEAT_WINDOW)
        self._last: tuple[str, ...] = ()
        self._last_key: tuple[bool, bool, int] | None = None
        self._last_finding: Finding | None = None
        self.new = False

    def observe(self, now: float, text: str | None) -> Finding | None:
        """Record one client text event; a Finding while the score is at or over the threshold.

        `new` says whether this set of signals differs from the last one reported, so `flag`
        records a decision when something changes, not on every message."""
        det = self.detector
        if not self._opened:
            self._opened = True
            if det.burst.opened(self._key, now) > det.burst.limit:
                self._fixed["session_burst"] = _W_BURST
                self._fixed_p = _product(self._fixed)
        cadence = False
        gaps = self._gaps
        if self._last_time is not None:
            # Running sums over the last _CADENCE_N gaps: O(1) per message.
            gap = now - self._last_time
            if len(gaps) == _CADENCE_N:
                old = gaps[0]
                self._sum -= old
                self._sumsq -= old * old
            gaps.append(gap)
            self._sum += gap
            self._sumsq += gap * gap
            if len(gaps) == _CADENCE_N:
                mean = self._sum / _CADENCE_N
                if mean <= 0.15:
                    cadence = True
                elif mean < 30.0:
                    var = max(0.0, self._sumsq / _CADENCE_N - mean * mean)
                    cadence = var < (0.1 * mean) ** 2  # coefficient of variation < 0.1
        self._last_time = now
        repeated = False
        if text:
            h = hash(text)  # per-process salt is fine: compared only within this session
            hashes = self._hashes
            hashes.append(h)
            repeated = hashes.count(h) >= _REPEATS
        if not (cadence or repeated or self._fixed):
            self.new = False
            return None
        # The score first, multiplied in the order `combine` would (fixed signals, cadence,
        # repetition), so it is the same float; the dict and the Finding only when it counts.
        p = self._fixed_p
        if cadence:
            p *= 1.0 - _W_CADENCE
        if repeated:
            p *= 1.0 - _W_REPEAT
        if round(1.0 - p, 4) < det.threshold:
            self.new = False
            return None
        # The same signals as the last finding: the same (immutable) finding, nothing new.
        key = (cadence, repeated, len(self._fixed))
        if key == self._last_key:
            self.new = False
            return self._last_finding
        signals = dict(self._fixed)
        if cadence:
            signals["inhuman_cadence"] = _W_CADENCE
        if repeated:
            signals["repeated_messages"] = _W_REPEAT
        score = combine(list(signals.values()))
        if score < det.threshold:
            self.new = False
            return None
        names = tuple(sorted(signals))
        self.new = names != self._last
        self._last = names
        finding = Finding(reason=f"bot-like session (score {score:.2f}): {', '.join(names)}", score=score)
        self._last_key = key
        self._last_finding = finding
        return finding
