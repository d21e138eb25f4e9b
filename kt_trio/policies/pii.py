"""`pii-detector`: finds e-mail addresses, phone numbers, card numbers, SSNs, IBANs, IP addresses
and personal names, and redacts each as `[REDACTED:<KIND>]` (DESIGN.md, "What a client sees").

Every kind is a candidate regex (compiled once) plus a validator that turns lookalikes away:
`phonenumbers` for phones, Luhn and issuer prefixes for cards, the SSA's never-issued ranges for
SSNs, the ISO 13616 mod-97 checksum and per-country length for IBANs, `ipaddress` for IPv6.
Cheap, sound pre-checks (an `@`, any digit, two colons) skip most detectors on most messages,
and the digit-based ones only look inside runs of digits and separators.

Names need no model: a name is one to three capitalised words after a cue — a phrase that
introduces one ("my name is", "this is", "call me", "I'm", sign-offs such as "Regards,") or a
title ("Dr.", "Mrs"). After a phrase cue, a stop list of common capitalised words keeps "I am
Happy to help" and "This is Important" out. What it misses, by design: names with no cue or
another cue ("John called yesterday", "meet John", "ask Priya"), lower-case or all-caps names
("my name is john"), initials ("John F. Kennedy" stops at "John"), a fourth name word, a name
that is also a stop word ("I am Hope"), and scripts beyond Latin-1. What it wrongly takes for a
name: a capitalised product or place after a cue ("This is Microsoft Teams", "Dr. Pepper").

Streaming (`kt_trio.policies.streaming`) needs two more things from this module, both here so
the patterns and the rules about how far they reach stay together: `scan` returns, beside the
validated spans, the raw extent of every candidate, and `tail_start` says where the text's tail
could still be the beginning of a match once more text arrives.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import phonenumbers

from kt_trio.policies.base import CommonSettings, Span, common_settings

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
}
_ALIASES = {
    "phone_number": "phone",
    "email_address": "email",
    "credit_card_number": "credit_card",
    "us_ssn": "ssn",
    "ip": "ip_address",
    "person": "name",
    "person_name": "name",
}

# The longest text any detector can match, in characters. E-mail is the longest kind: RFC 5321
# limits a path to 256 octets, so an address is at most 254 characters; the regex below allows a
# 64-character local part and a 190-character domain. The streaming redactor never needs to hold
# back more than this (a longer tail cannot start a match that is still open).
MAX_MATCH = 256


def _trie_regex(words: Iterable[str], space: str = " ") -> str:
    """A regex matching exactly `words`, longest first; a space in a word becomes `space`."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, Any]) -> str:
        terminal = "" in node
        branches = [(space if ch == " " else re.escape(ch)) + render(child) for ch, child in node.items() if ch != ""]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if terminal else body

    return render(trie)


# --- candidates -----------------------------------------------------------------------------

# The local part may hold Latin-1 letters (jürgen@...); the domain is ASCII (IDNs travel as punycode).
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+\-À-ÖØ-öø-ÿ]{1,64}@(?=[A-Za-z0-9.-]{1,190}(?![A-Za-z0-9.-]))"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?!\w)")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?!\d)")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\w|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")

# Names: cue phrases (case-insensitive) and titles, then capitalised words (case-sensitive).
# Phrases that introduce a name (one space between words; matched case-insensitively).
_CUES = (
    "my name is",
    "my name's",
    "his name is",
    "her name is",
    "their name is",
    "your name is",
    "name:",
    "call me",
    "i am",
    "i'm",
    "this is",
    "named",
    "called",
    "regards,",
    "sincerely,",
    "thanks,",
    "cheers,",
)
_TITLES = ("Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof", "Sir", "Dame", "Madam", "Mme", "Herr", "Frau")
_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
# A name word: capitalised, optionally O'Brien-style or double-barrelled; at most 45 characters.
_NAME_WORD = rf"[{_UPPER}](?:[{_LOWER}]{{1,20}}|['’][{_UPPER}][{_LOWER}]{{1,20}})(?:-[{_UPPER}][{_LOWER}]{{1,20}})?"
_NAME_WORDS = rf"{_NAME_WORD}(?:[ \t]{_NAME_WORD}){{0,2}}"
_TITLE_ALT = "|".join(sorted(_TITLES, key=len, reverse=True))


# Two-phase name search: cues are found on ASCII-lower-cased text by a trie of case-sensitive
# literals (sre then skips ahead by first character: ~3 µs on 300 characters, where
# `\b(?i:...)` took ~18), titles on the original text; the capitalised words are then matched at
# the cue's end on the original text. The words of a cue are one space apart.
_CUE = re.compile("(?:" + _trie_regex(_CUES) + r")\s{1,3}")
_TITLE = re.compile(rf"(?:{_TITLE_ALT})\.?\s{{1,3}}")
_NAME_AT = re.compile(rf"(?!(?:{_TITLE_ALT})\b){_NAME_WORDS}(?![{_UPPER}{_LOWER}'’-])")
_WORDISH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'’")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Capitalised words that follow "I am" / "this is" / a sign-off far more often than a name does.
_STOP = frozenset(
    """
    A An The This That It Its Here There Now Not No Yes Just Very So Also Still Only Really Sure
    Sorry Happy Glad Ready Fine Good Great Okay Ok Back New Done Afraid Able Unable Available
    Interested Excited Confused Tired Hungry Busy Calling Writing Looking Trying Going Working
    Thinking Wondering Hoping Feeling Getting Having Reaching Following Replying Responding
    Important Urgent Critical Amazing Awesome Correct Wrong True False Right Exactly Definitely
    Absolutely Certainly Currently Always Never Sometimes Usually Today Tomorrow Yesterday
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May
    June July August September October November December English French German Spanish American
    British Team Support Customer Service All Everyone Everybody Someone Nobody Your My Our Their
    His Her We You They Please Thank Thanks Best Kind Warm What Why How When Where Who Which
    """.split()
)

# --- validators -----------------------------------------------------------------------------


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_issuer_ok(digits: str) -> bool:
    first = digits[0]
    if first in "3456":
        return True
    return first == "2" and 2221 <= int(digits[:4]) <= 2720  # Mastercard 2-series


def _prefix_ends(text: str, start: int, end: int, minimum: int, maximum: int, *, sep: str) -> list[tuple[int, int]]:
    """`(end, n_chars)` of each prefix of text[start:end] that stops before a separator or at
    the end, longest first: a candidate that swallowed a following number can still match."""
    ends: list[tuple[int, int]] = []
    n = 0
    for i in range(start, end):
        if text[i] not in sep:
            n += 1
            if minimum <= n <= maximum and (i + 1 == end or text[i + 1] in sep):
                ends.append((i + 1, n))
    ends.reverse()
    return ends


def _card(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s, e = m.span()
    for end, _ in _prefix_ends(text, s, e, 13, 19, sep=" -"):
        digits = text[s:end].replace(" ", "").replace("-", "")
        if _card_issuer_ok(digits) and _luhn(digits):
            return s, end
    return None


def _ssn(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    area, group, serial = int(m.group(1)), int(m.group(3)), int(m.group(4))
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return None
    if m.group(1) + m.group(3) + m.group(4) in ("078051120", "219099999"):  # published specimens
        return None
    return m.span()


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def _iban_ok(compact: str) -> bool:
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _iban(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s, e = m.span()
    for end, _ in _prefix_ends(text, s, e, 15, 34, sep=" "):
        if _iban_ok(text[s:end].replace(" ", "")):
            return s, end
    return None


def _ipv6(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    cand = m.group()
    if not any(c not in ":" for c in cand):
        return None
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return None
    return m.span()


def _valid(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    return m.span()


def _phone_validator(regions: tuple[str, ...]) -> Callable[[str, re.Match[str]], tuple[int, int] | None]:
    def validate(text: str, m: re.Match[str]) -> tuple[int, int] | None:
        cand = m.group()
        n = sum(c.isdigit() for c in cand)
        if n < 7 or n > 15:
            return None
        for region in (None,) if cand.startswith("+") else regions:
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(cand, region)):
                    return m.span()
            except phonenumbers.NumberParseException:
                continue
        return None

    return validate


# --- streaming tail rules --------------------------------------------------------------------

# Characters an e-mail address, an IPv6 address, or the word being typed can be made of. The
# trailing run of these is held (it may yet become `bob@example.com`, or a cue word).
_RUN_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-@:'’"
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ"
)


# The tail rules read the text *backwards*: each regex below is matched, anchored, against the
# reversed last `_TAIL_WINDOW` characters, so its cost is the length of the tail it recognises,
# not of the text (a forward `search` for "a match that reaches the end" tries every position).
# Greedy quantifiers make each match the longest, i.e. the earliest start in the forward text.
# Every name-related match fits in the window: cue <= 16 + 3 spaces + 3 words of <= 45 + 2.
_TAIL_WINDOW = 160
_NAME_TAIL_R = r"(?:(?:[\w'’-]{0,45}[ \t]{1,2}){0,2}[\w'’-]{0,45})?"
_CUES_R = [c[::-1] for c in _CUES]
_CUE_PREFIXES_R = sorted({c[:k][::-1] for c in _CUES for k in range(1, len(c) + 1)})
_NOT_WORD_NEXT = r"(?![\w'’])"  # reversed: the character before the cue is not a word character
_S = r"\s{1,3}"
_TAIL_R = [
    # digits and their separators: phone, card, SSN, IPv4 (a start must be a digit, '+' or '(')
    re.compile(r"[\d ().+/-]*[+(\d]"),
    # an IBAN with its country code in place: 'GB82 WEST 12'
    re.compile(r" ?(?:[A-Z0-9] ?){0,32}\d{2}[A-Z]{2}"),
    # a complete cue, then whitespace and up to three (partial) words: 'my name is Jo'
    re.compile(_NAME_TAIL_R + r"\s{1,3}(?i:" + _trie_regex(_CUES_R, _S) + ")" + _NOT_WORD_NEXT),
    # a cue still being written: 'my na', 'this '
    re.compile(r"(?i:" + _trie_regex(_CUE_PREFIXES_R, _S) + ")" + _NOT_WORD_NEXT),
    # a title, then whitespace and up to three (partial) words: 'Dr. Jane D'
    re.compile(_NAME_TAIL_R + r"\s{0,3}\.?(?:" + _trie_regex([t[::-1] for t in _TITLES]) + ")" + _NOT_WORD_NEXT),
]


# --- the policy -----------------------------------------------------------------------------

_Validator = Callable[[str, re.Match[str]], "tuple[int, int] | None"]


class PiiDetector:
    """Finds PII spans; pure and shared by every session (no per-session state)."""

    name = NAME

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        settings = settings or {}
        self.settings: CommonSettings = common_settings(
            NAME, settings, default_action="redact", default_apply_to="both"
        )
        wanted = settings.get("detect_patterns") or list(PATTERNS)
        kinds: list[str] = []
        for p in wanted:
            key = _ALIASES.get(str(p).lower(), str(p).lower())
            if key not in PATTERNS:
                raise ValueError(f"policy.{NAME}.detect_patterns: unknown pattern {p!r} (known: {sorted(PATTERNS)})")
            kinds.append(PATTERNS[key])
        self.kinds = frozenset(kinds)
        regions = tuple(settings.get("phone_regions") or ("US",))
        # Detectors that run inside digit runs, in the order they are tried.
        table: list[tuple[str, re.Pattern[str], _Validator]] = [
            ("CREDIT_CARD", _CARD, _card),
            ("SSN", _SSN, _ssn),
            ("IP_ADDRESS", _IPV4, _valid),
            ("PHONE", _PHONE, _phone_validator(regions)),
        ]
        self._detectors = [row for row in table if row[0] in self.kinds]
        self._iban = "IBAN" in self.kinds
        self._ipv6 = "IP_ADDRESS" in self.kinds
        self._digit_kinds = bool(self._detectors) or self._iban
        self._names = "NAME" in self.kinds
        # When two kinds overlap at one start, the longer wins, then the stricter validator.
        self._priority = {
            k: i for i, k in enumerate(["EMAIL", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS", "PHONE", "NAME"])
        }

    # The one scanning routine; `find` and the streaming redactor both use it.
    def scan(self, text: str, pos: int = 0) -> tuple[list[Span], list[tuple[int, int]]]:
        """Validated, non-overlapping spans and the raw extents of every candidate at or after `pos`.

        Deterministic and local — a candidate depends only on the characters it covers and one on
        each side — which is what lets the streaming redactor scan a text in pieces. The
        pre-filters are sound: each only skips a detector that could not match anyway.
        """
        spans: list[Span] = []
        raw: list[tuple[int, int]] = []
        detectors = self._detectors
        if "EMAIL" in self.kinds:
            at = text.find("@", pos)
            if at >= 0:
                self._run(_EMAIL, _valid, "EMAIL", text, max(pos, at - 65), len(text), spans, raw)
        if self._digit_kinds and any(d in text for d in "0123456789"):
            for m in _CLUSTER.finditer(text, pos):
                cs, ce = m.span()
                start = cs - 1 if cs > pos and text[cs - 1] in "+(" else cs
                end = min(len(text), ce + 1)
                for kind, rx, validate in detectors:
                    self._run(rx, validate, kind, text, start, end, spans, raw)
                if self._iban and cs - 2 >= pos and ce - cs >= 2:
                    mm = _IBAN.match(text, cs - 2)
                    if mm is not None:
                        raw.append(mm.span())
                        hit = _iban(text, mm)
                        if hit is not None:
                            spans.append(Span(hit[0], hit[1], "IBAN", mm.start(), mm.end()))
        if self._ipv6 and text.count(":", pos) >= 2:
            self._run(_IPV6, _ipv6, "IP_ADDRESS", text, pos, len(text), spans, raw)
        if self._names:
            self._scan_names(text, pos, spans, raw)
        if len(spans) > 1:
            spans = self._resolve(spans)
        return spans, raw

    @staticmethod
    def _run(
        rx: re.Pattern[str],
        validate: _Validator,
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

    def _scan_names(self, text: str, pos: int, spans: list[Span], raw: list[tuple[int, int]]) -> None:
        lower = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
        cues: list[tuple[int, int, bool]] = []  # (start, end, is_title)
        for m in _CUE.finditer(lower, pos):
            s = m.start()
            if s == 0 or lower[s - 1] not in _WORDISH:
                cues.append((s, m.end(), False))
        for m in _TITLE.finditer(text, pos):
            s = m.start()
            if s == 0 or text[s - 1] not in _WORDISH:
                cues.append((s, m.end(), True))
        if len(cues) > 1:
            cues.sort()
        last = -1
        for s, e, is_title in cues:
            if s < last:
                continue
            m = _NAME_AT.match(text, e)
            if m is None:
                continue
            raw.append((s, m.end()))
            last = m.end()
            first = m.group().split(" ", 1)[0].split("\t", 1)[0]
            if first in _STOP and not is_title:  # after a title any capitalised word is a name
                continue
            spans.append(Span(m.start(), m.end(), "NAME", s, m.end()))

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

    def find(self, text: str) -> list[Span]:
        return self.scan(text)[0]

    def tail_start(self, text: str) -> int:
        """Where the tail that could still grow into a match begins (len(text) if none).

        Conservative: it may hold more than needed, never less (tests/test_policies_streaming.py
        checks every split position of every kind against scanning the whole text).
        """
        n = len(text)
        window = text[-MAX_MATCH:]
        longest = len(window) - len(window.rstrip(_RUN_CHARS))
        rev = text[-_TAIL_WINDOW:][::-1]
        for rx in _TAIL_R:
            m = rx.match(rev)
            if m is not None and m.end() > longest:
                longest = m.end()
        return n - longest


# A run of digits and the separators phone, card, SSN and IPv4 numbers use: every such candidate
# lies inside one run, so the detectors only look there.
_CLUSTER = re.compile(r"\d[\d ().+/-]*")


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
