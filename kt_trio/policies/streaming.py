"""Split-safe PII scanning of streamed output: one `StreamScanner` per content part.

A phone number can arrive as `"call 415 55"` + `"5 2671"`. Scanning each delta alone misses it;
holding the whole part until its `.done` makes the client wait for the whole answer. The scanner
holds back only the tail that could still be the start of a match:

    buf = ctx + held + delta          # ctx: the last few raw characters already sent
    h   = where the tail that could still grow into a match begins (`PiiDetector.tail_start`),
          moved back to the start of any candidate that ends within the last 2 characters
          (its end could still change) or that straddles h (never cut a candidate in two)
    send buf[len(ctx):h], keep buf[h:]

Why the result equals scanning the whole text at once (what the `.done` event and
`response.done` carry, so the client sees one consistent text): every candidate that starts in
the sent part ends inside `buf` with its lookahead character known, so the regex saw exactly
what it would see in the whole text; candidates that could still grow start at or after `h` and
are scanned again with the next delta. `ctx` gives lookbehinds (`\\b`, "not after a digit")
the character before `h`. The property test in tests/test_policies_streaming.py checks this for
every split position.

Bounds: `held` is at most `pii.MAX_MATCH` (256) characters in normal text, because no candidate
is longer than that (e-mail, the longest kind, is capped at 254 by RFC 5321); a chain of
overlapping candidates of different kinds could push it further, so `MAX_HELD` caps it hard and
sends the excess (a pathological input then loses the split guarantee, never memory).
"""

from __future__ import annotations

from kt_trio.policies.base import Span
from kt_trio.policies.pii import MAX_MATCH, PiiDetector

# Context kept before the held text: lookbehinds need one character, and phone numbers and
# national identifiers read the `pii_phone.WINDOW` (64) characters before them for a word that
# says what they are; a candidate that starts in the held text must see what the whole-text scan
# sees there.
_CTX = 72
MAX_HELD = 2 * MAX_MATCH


class StreamScanner:
    __slots__ = ("_ctx", "_held", "_pii")

    def __init__(self, pii: PiiDetector) -> None:
        self._pii = pii
        self._ctx = ""
        self._held = ""

    @property
    def held(self) -> str:
        return self._held

    def feed(self, delta: str) -> tuple[str, list[Span]]:
        """The raw text that may be sent now, and the spans found in it (relative to it)."""
        held = self._held
        text = held + delta if held else delta
        # The common case, plain text: nothing can be found in held + delta, only begin at its
        # end (`PiiDetector.plain_tail_start`), so neither `scan` nor the full tail rules run.
        h = self._pii.plain_tail_start(text) if text else -1
        if h >= 0:
            if h == 0:
                self._held = text
                return "", []
            self._held = text[h:]
            self._ctx = text[h - _CTX : h] if h >= _CTX else (self._ctx + text[:h])[-_CTX:]
            return text[:h], []
        ctx = self._ctx
        base = len(ctx)
        buf = ctx + self._held + delta
        n = len(buf)
        spans, raw = self._pii.scan(buf, base)
        h = self._pii.tail_start(buf)
        if h < base:
            h = base
        near_end = n - 2
        for s, e in raw:
            if e > near_end and s < h:
                h = s
        moved = True
        while moved:
            moved = False
            for s, e in raw:
                if s < h < e:
                    h = s
                    moved = True
        if h < base:  # a candidate from an earlier delta's text; cannot be un-sent
            h = base
        if n - h > MAX_HELD:
            h = n - MAX_HELD
        self._held = buf[h:]
        self._ctx = buf[max(0, h - _CTX) : h]
        if h == base:
            return "", []
        out = [
            Span(s.start - base, s.end - base, s.kind, s.hold_start - base, s.hold_end - base)
            for s in spans
            if s.end <= h
        ]
        return buf[base:h], out

    def flush(self) -> tuple[str, list[Span]]:
        """Everything still held (the part is done), with its spans."""
        ctx, held = self._ctx, self._held
        self._held = ""
        self._ctx = ""
        if not held:
            return "", []
        base = len(ctx)
        spans, _ = self._pii.scan(ctx + held, base)
        return held, [Span(s.start - base, s.end - base, s.kind, s.hold_start - base, s.hold_end - base) for s in spans]
