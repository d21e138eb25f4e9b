"""`pii-detector`: finds e-mail addresses, phone numbers, card numbers, SSNs, IBANs, IP addresses
and personal names, and redacts each as `[REDACTED:<KIND>]` (DESIGN.md, "What a client sees").

Every kind is a candidate regex (compiled once) plus a validator that turns lookalikes away
(`pii_candidates`; `phonenumbers` for phones in `pii_phone`, identifiers in `pii_national_id`).
Cheap, sound pre-checks (an `@`, any digit, two colons) skip most detectors on most messages,
and the digit-based ones only look inside runs of digits and separators.

Names need no model: a name is one to three capitalised words after a cue — a phrase that
introduces one ("my name is", "this is", "call me", "I'm", sign-offs such as "Regards,") or a
title ("Dr.", "Mrs"); see `pii_names`. What it misses, by design: names with no cue or
another cue ("John called yesterday", "meet John", "ask Priya"), lower-case or all-caps names
("my name is john"), initials ("John F. Kennedy" stops at "John"), a fourth name word, a name
that is also a stop word ("I am Hope"), and scripts beyond Latin-1. What it wrongly takes for a
name: a capitalised product or place after a cue ("This is Microsoft Teams", "Dr. Pepper").

Streaming (`kt_trio.policies.streaming`) needs two more things: `scan` returns, beside the
validated spans, the raw extent of every candidate, and `tail_start` says where the text's tail
could still be the beginning of a match once more text arrives (the rules are in `pii_tail`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kt_trio.config.schema import PiiDetectorSettings
from kt_trio.policies.base import _CONTROLS, CommonSettings, Quiet, Span, TextView, common_settings
from kt_trio.policies.pii_candidates import (
    CARD,
    CLUSTER,
    EMAIL,
    IBAN,
    IPV4,
    IPV6,
    MAX_MATCH,
    SSN,
    Validator,
    card,
    has_digit,
    iban,
    ipv6,
    ssn,
    valid,
)
from kt_trio.policies.pii_names import CUE_FIRST, CUE_WORDS, TITLE_WORDS, scan_names
from kt_trio.policies.pii_national_id import find_ids
from kt_trio.policies.pii_phone import PHONE, PhoneFinder
from kt_trio.policies.pii_tail import TailRules

__all__ = ["MAX_MATCH", "NAME", "PATTERNS", "PiiDetector", "redact"]

NAME = "pii-detector"

# Config spelling -> KIND in the redaction token. Aliases accept the names other gateways use.
PATTERNS: dict[str, str] = {
    "email": "EMAIL",
    "phone": "PHONE",
    "credit_card": "CREDIT_CARD",
    "ssn": "SSN",
    "iban": "IBAN",
    "ip_address": "IP_ADDRESS",
    "name": "NAME",
    "national_id": "NATIONAL_ID",
}
_ALIASES = {
    "phone_number": "phone",
    "email_address": "email",
    "credit_card_number": "credit_card",
    "us_ssn": "ssn",
    "ip": "ip_address",
    "person": "name",
    "person_name": "name",
    "national_identifier": "national_id",
    "id_number": "national_id",
}


class PiiDetector(TailRules):
    """Finds PII spans; pure and shared by every session (no per-session state)."""

    name = NAME

    def __init__(self, settings: PiiDetectorSettings | None = None) -> None:
        settings = settings or PiiDetectorSettings()
        self.settings: CommonSettings = common_settings(settings)
        wanted = settings.detect_patterns
        kinds: list[str] = []
        for p in wanted:
            key = _ALIASES.get(str(p).lower(), str(p).lower())
            if key not in PATTERNS:
                raise ValueError(f"policy.{NAME}.detect_patterns: unknown pattern {p!r} (known: {sorted(PATTERNS)})")
            kinds.append(PATTERNS[key])
        self.kinds = frozenset(kinds)
        regions = settings.phone_regions
        # Detectors that run inside digit runs, in the order they are tried.
        table: list[tuple[str, re.Pattern[str], Validator]] = [
            ("CREDIT_CARD", CARD, card),
            ("SSN", SSN, ssn),
            ("IP_ADDRESS", IPV4, valid),
            ("PHONE", PHONE, PhoneFinder(regions).validate),
        ]
        self._detectors = [row for row in table if row[0] in self.kinds]
        self._iban = "IBAN" in self.kinds
        self._ids = "NATIONAL_ID" in self.kinds
        self._ipv6 = "IP_ADDRESS" in self.kinds
        self._digit_kinds = bool(self._detectors) or self._iban or self._ids
        self._names = "NAME" in self.kinds
        self._email = "EMAIL" in self.kinds
        # Which streaming tail rules apply: the trailing run of address characters (e-mail,
        # IPv6, and an IBAN's country code and check digits before the IBAN rule can see them),
        # and digit runs (card, SSN, IPv4, phone).
        self._run_tail = self._email or self._iban or "IP_ADDRESS" in self.kinds
        self._digit_tail = bool(self._detectors)
        # What `scan` needs to find anything (its pre-filters): '@' for e-mail, a digit for the
        # digit kinds and IBAN, ':' for IPv6, a cue's first word or a title word for names
        # (whose word pre-filter also needs text without the controls `words` keeps).
        chars = b"@" if self._email else b""
        if self._digit_kinds:
            chars += b"0123456789"
        if self._ipv6:
            chars += b":"
        if self._names:
            chars += _CONTROLS
        self.quiet: Quiet = Quiet(CUE_FIRST | TITLE_WORDS if self._names else frozenset(), chars)
        # When two kinds overlap at one start, the longer wins, then the stricter validator.
        self._priority = {
            k: i
            for i, k in enumerate(["EMAIL", "CREDIT_CARD", "IBAN", "SSN", "NATIONAL_ID", "IP_ADDRESS", "PHONE", "NAME"])
        }

    # The one scanning routine; `find` and the streaming redactor both use it.
    def scan(self, text: str, pos: int = 0, view: TextView | None = None) -> tuple[list[Span], list[tuple[int, int]]]:
        """Validated, non-overlapping spans and the raw extents of every candidate at or after `pos`.

        Deterministic and local — a candidate depends only on the characters it covers and one on
        each side — which is what lets the streaming redactor scan a text in pieces. The
        pre-filters are sound: each only skips a detector that could not match anyway. `view`,
        a `TextView` of this very text, lets them use its cached words and character checks.
        """
        spans: list[Span] = []
        raw: list[tuple[int, int]] = []
        detectors = self._detectors
        if view is not None and view.text is not text:
            view = None
        if self._email:
            at = text.find("@", pos)
            if at >= 0:
                self._run(EMAIL, valid, "EMAIL", text, max(pos, at - 65), len(text), spans, raw)
        if self._digit_kinds and (view.has_any_of("0123456789") if view is not None else has_digit(text)):
            for m in CLUSTER.finditer(text, pos):
                cs, ce = m.span()
                start = cs - 1 if cs > pos and text[cs - 1] in "+(" else cs
                end = min(len(text), ce + 1)
                for kind, rx, validate in detectors:
                    self._run(rx, validate, kind, text, start, end, spans, raw)
                if self._iban and cs - 2 >= pos and ce - cs >= 2:
                    mm = IBAN.match(text, cs - 2)
                    if mm is not None:
                        raw.append(mm.span())
                        hit = iban(text, mm)
                        if hit is not None:
                            spans.append(Span(hit[0], hit[1], "IBAN", mm.start(), mm.end()))
            if self._ids:
                found: list[tuple[int, int]] = []
                find_ids(text, pos, found, raw)
                spans.extend(Span(a, b, "NATIONAL_ID", a, b) for a, b in found)
        if self._ipv6 and text.count(":", pos) >= 2:
            self._run(IPV6, ipv6, "IP_ADDRESS", text, pos, len(text), spans, raw)
        # A name needs a capital letter where its words start (at or after pos): none there,
        # no name candidate. (`islower` is False for text without cased characters: then scan.)
        if self._names and not text[pos:].islower():
            cues = titles = True
            if view is not None and pos == 0 and view.words_are_whole:
                words = view.hits  # cue and title words are registered: the same as view.words
                cues = any(ws <= words for w in words & CUE_FIRST for ws in CUE_WORDS[w])
                titles = not words.isdisjoint(TITLE_WORDS)
            if cues or titles:
                scan_names(text, pos, spans, raw, cues, titles)
        if len(spans) > 1:
            spans = self._resolve(spans)
        return spans, raw

    @staticmethod
    def _run(
        rx: re.Pattern[str],
        validate: Validator,
        kind: str,
        text: str,
        start: int,
        end: int,
        spans: list[Span],
        raw: list[tuple[int, int]],
    ) -> None:
        for m in rx.finditer(text, start, end):
            raw.append(m.span())
            hit = validate(text, m)
            if hit is not None:
                spans.append(Span(hit[0], hit[1], kind, m.start(), m.end()))

    def _resolve(self, spans: list[Span]) -> list[Span]:
        prio = self._priority
        spans.sort(key=lambda s: (s.start, -(s.end - s.start), prio[s.kind]))
        out: list[Span] = []
        end = -1
        for s in spans:
            if s.start >= end:
                out.append(s)
                end = s.end
        return out

    def find(self, text: str, view: TextView | None = None) -> list[Span]:
        if view is not None and view.text is text and view.is_quiet(self.quiet):
            return []
        return self.scan(text, 0, view)[0]


def redact(text: str, spans: Iterable[Span]) -> str:
    """`text` with each span replaced by `[REDACTED:<KIND>]`; spans sorted and non-overlapping."""
    out: list[str] = []
    last = 0
    for s in spans:
        out.append(text[last : s.start])
        out.append(f"[REDACTED:{s.kind}]")
        last = s.end
    out.append(text[last:])
    return "".join(out)
