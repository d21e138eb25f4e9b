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
from collections.abc import Callable, Iterable
from typing import Any

from kt_trio.config.schema import PiiDetectorSettings
from kt_trio.policies.base import (
    _CONTROLS,
    _WORD_TABLE,
    CommonSettings,
    Quiet,
    Span,
    TextView,
    common_settings,
    register_vocabulary,
)
from kt_trio.policies.pii_national_id import MAX_ID_CHARS, find_ids
from kt_trio.policies.pii_phone import PHONE, PhoneFinder

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

# Word pre-filter for names (used when a `TextView` of the text is at hand and its `words` are
# whole, see `TextView.words_are_whole`): a cue can only match where all its words are words of
# the text, a title where its lower-case form is one.
_CUE_WORDS: dict[bytes, list[frozenset[bytes]]] = {}
for _c in _CUES:
    _ws = _c.encode("ascii").translate(_WORD_TABLE).split()
    _CUE_WORDS.setdefault(_ws[0], []).append(frozenset(_ws))
_CUE_FIRST = frozenset(_CUE_WORDS)
_TITLE_WORDS = frozenset(t.lower().encode("ascii") for t in _TITLES)
register_vocabulary(_TITLE_WORDS.union(*(ws for wss in _CUE_WORDS.values() for ws in wss)))

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
# Reversed: the character before the cue is not one of `_WORDISH` (what `_scan_names` takes for a
# word character before a cue). Not `\w`: that also refuses non-ASCII letters, so 'écall me '
# was released although the whole-text scan takes 'call me' there for a cue.
_NOT_WORD_NEXT = r"(?![A-Za-z0-9_'’])"
_S = r"\s{1,3}"
# digits and their separators: phone, card, SSN, IPv4 (a start must be a digit, '+' or '(')
_TAIL_DIGITS = re.compile(r"[\d ().+/-]*[+(\d]")
_DIGIT_TAIL_LAST = " ().+/-"  # with the decimal digits: the characters that rule can start with
# an IBAN with its country code in place: 'GB82 WEST 12'
_TAIL_IBAN = re.compile(r" ?(?:[A-Z0-9] ?){0,32}\d{2}[A-Z]{2}")
# a complete cue, then whitespace and up to three (partial) words: 'my name is Jo'
_TAIL_CUE = re.compile(_NAME_TAIL_R + r"\s{1,3}(?i:" + _trie_regex(_CUES_R, _S) + ")" + _NOT_WORD_NEXT)
# a cue still being written: 'my na', 'this '
_TAIL_CUE_PREFIX = re.compile(r"(?i:" + _trie_regex(_CUE_PREFIXES_R, _S) + ")" + _NOT_WORD_NEXT)
# a title, then whitespace and up to three (partial) words: 'Dr. Jane D'
_TAIL_TITLE = re.compile(
    _NAME_TAIL_R + r"\s{0,3}\.?(?:" + _trie_regex([t[::-1] for t in _TITLES]) + ")" + _NOT_WORD_NEXT
)
# Pre-checks for the last two: the last word of each cue (a cue is followed by whitespace, so it
# ends a token), and any title anywhere (case-sensitive, like the rule).
# A cue of several words has whitespace before its last word, which is then a whole token; a
# one-word cue may have a non-word character glued before it ('(named').
_CUE_LAST_TOKENS = frozenset(c.split(" ")[-1] for c in _CUES if " " in c)
# A one-word cue at the end of a token (the tokens joined with, and followed by, a space).
_ONE_WORD_CUE_END = re.compile("(?:" + "|".join(re.escape(c) for c in _CUES if " " not in c) + ") ")
# Words of a cue that another of its words follows ('my' in 'my name is').
_CUE_NONFINAL = tuple(sorted({w for c in _CUES for w in c.split(" ")[:-1]}))
_ANY_TITLE = re.compile("|".join(_TITLES))
# A title still being written ('D', 'Pro'): the trailing run holds it when that rule applies;
# with only names enabled, this does (without it 'Ask D' + 'r. Jane Doe' lost the name).
_TITLE_PREFIXES_R = sorted({t[:k][::-1] for t in _TITLES for k in range(1, len(t) + 1)})
_TAIL_TITLE_PREFIX = re.compile("(?:" + _trie_regex(_TITLE_PREFIXES_R) + ")" + _NOT_WORD_NEXT)

# Plain text: what most streamed deltas are (words, spaces, punctuation). In ASCII text with no
# digit, no '@' and at most one ':' only names can lie whole (e-mail needs '@'; phone, card, SSN,
# IPv4 and IBAN need digits; IPv6 needs two colons), and a name only after a cue or a title
# followed by whitespace and a capital; with no capital, or no such cue or title, none. A
# candidate can then only *begin* there, in four ways, which `plain_tail_start` holds back:
# - inside the trailing run of `_RUN_CHARS` (an e-mail's local part, IPv6 hex, an IBAN's letters);
# - at a final '+' or '(' (a phone's prefix; every other digit kind begins with a digit);
# - at a cue that is still being written, or is complete and followed by at most three
#   whitespace characters (the name, which must begin with a capital, is yet to come);
# - likewise at a title (only where there is a capital: a title begins with one).
_NOT_PLAIN = b"0123456789@"
_PLAIN_BYTES = bytes(i for i in range(128) if i not in _NOT_PLAIN and not 0x41 <= i <= 0x5A)  # A-Z: capitals
_PLAIN_RUN = "".join(c for c in _RUN_CHARS if c.isascii())
# Reversed: up to three whitespace characters, then the end of a prefix of a cue (a complete cue
# is its own longest prefix), and the character before it is not a word character
# (`_scan_names`' test). Cue words are one space apart in `_CUE`, so here too. Case-sensitive:
# it reads lower-cased text, as `_scan_names` does.
_PLAIN_CUE_TAIL = re.compile(r"\s{0,3}(?:" + _trie_regex(_CUE_PREFIXES_R) + ")" + _NOT_WORD_NEXT)
# The same for titles, which `_TITLE` matches case-sensitively and may follow with a '.'.
_PLAIN_TITLE_TAIL = re.compile(r"\s{0,3}\.?(?:" + _trie_regex(_TITLE_PREFIXES_R) + ")" + _NOT_WORD_NEXT)
# The longest cue (13) or title, three whitespace characters and a '.', and the character before.
_PLAIN_WINDOW = max(map(len, (*_CUES, *_TITLES))) + 3 + 1 + 1

# --- the policy -----------------------------------------------------------------------------

_Validator = Callable[[str, re.Match[str]], "tuple[int, int] | None"]


class PiiDetector:
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
        table: list[tuple[str, re.Pattern[str], _Validator]] = [
            ("CREDIT_CARD", _CARD, _card),
            ("SSN", _SSN, _ssn),
            ("IP_ADDRESS", _IPV4, _valid),
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
        self.quiet: Quiet = Quiet(_CUE_FIRST | _TITLE_WORDS if self._names else frozenset(), chars)
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
                self._run(_EMAIL, _valid, "EMAIL", text, max(pos, at - 65), len(text), spans, raw)
        if self._digit_kinds and (view.has_any_of("0123456789") if view is not None else _has_digit(text)):
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
            if self._ids:
                found: list[tuple[int, int]] = []
                find_ids(text, pos, found, raw)
                spans.extend(Span(a, b, "NATIONAL_ID", a, b) for a, b in found)
        if self._ipv6 and text.count(":", pos) >= 2:
            self._run(_IPV6, _ipv6, "IP_ADDRESS", text, pos, len(text), spans, raw)
        # A name needs a capital letter where its words start (at or after pos): none there,
        # no name candidate. (`islower` is False for text without cased characters: then scan.)
        if self._names and not text[pos:].islower():
            cues = titles = True
            if view is not None and pos == 0 and view.words_are_whole:
                words = view.hits  # cue and title words are registered: the same as view.words
                cues = any(ws <= words for w in words & _CUE_FIRST for ws in _CUE_WORDS[w])
                titles = not words.isdisjoint(_TITLE_WORDS)
            if cues or titles:
                self._scan_names(text, pos, spans, raw, cues, titles)
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

    def _scan_names(
        self,
        text: str,
        pos: int,
        spans: list[Span],
        raw: list[tuple[int, int]],
        with_cues: bool = True,
        with_titles: bool = True,
    ) -> None:
        cues: list[tuple[int, int, bool]] = []  # (start, end, is_title)
        if with_cues:
            lower = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
            for m in _CUE.finditer(lower, pos):
                s = m.start()
                if s == 0 or lower[s - 1] not in _WORDISH:
                    cues.append((s, m.end(), False))
        if with_titles:
            for m in _TITLE.finditer(text, pos):
                s = m.start()
                if s == 0 or text[s - 1] not in _WORDISH:
                    cues.append((s, m.end(), True))
        if not cues:
            return
        if len(cues) > 1:
            cues.sort()
        last = -1
        for s, e, is_title in cues:
            if s < last:
                continue
            at = _NAME_AT.match(text, e)
            if at is None:
                continue
            raw.append((s, at.end()))
            last = at.end()
            first = at.group().split(" ", 1)[0].split("\t", 1)[0]
            if first in _STOP and not is_title:  # after a title any capitalised word is a name
                continue
            spans.append(Span(at.start(), at.end(), "NAME", s, at.end()))

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

    def plain_tail_start(self, text: str) -> int:
        """For plain text (see `_NOT_PLAIN`), where the tail that could still grow into a match
        begins, knowing that `scan(text)` finds nothing (no span, no candidate); -1 for any other
        text (`scan` and `tail_start` must then do it). `text` is not empty.

        Sound for the same reason as `tail_start`, with fewer rules because fewer candidates can
        begin in plain text. It holds less than `tail_start` after a complete cue ('this is the'
        goes out: a name would have begun with a capital). ~0.6 µs on a delta where `scan` and
        `tail_start` took ~4.
        """
        if not text.isascii():
            return -1
        b = text.encode("ascii")
        rest = b.translate(None, _PLAIN_BYTES)  # digits, '@' and capitals
        if rest and not rest.isalpha():
            return -1
        if 0x3A in b and b.count(b":") > 1:
            return -1
        names = self._names
        if rest and names and (_CUE.search(text.lower()) is not None or _TITLE.search(text) is not None):
            return -1  # a cue or title, and a capital somewhere: there may be a name
        n = len(text)
        h = n
        if self._run_tail:
            run = n - len(text.rstrip(_PLAIN_RUN))
            h = n - (run if run < MAX_MATCH else MAX_MATCH)
        if self._digit_tail and text[-1] in "+(" and h == n:
            h = n - 1
        if self._ids and text[-1] in _ID_CHARS:  # else no identifier can still grow (`_id_tail` 0)
            k = _id_tail(text)
            if n - k < h:
                h = n - k
        if names:
            tail = text[-_PLAIN_WINDOW:]
            if rest:
                m = _PLAIN_TITLE_TAIL.match(tail[::-1])
                if m is not None and n - m.end() < h:
                    h = n - m.end()
                tail = tail.lower()
            m = _PLAIN_CUE_TAIL.match(tail[::-1])
            if m is not None and n - m.end() < h:
                h = n - m.end()
        return h

    def tail_start(self, text: str) -> int:
        """Where the tail that could still grow into a match begins (len(text) if none).

        Conservative: it may hold more than needed, never less (tests/test_policies_streaming.py
        checks every split position of every kind against scanning the whole text). Only the
        rules of enabled kinds apply, and each rule runs only when a cheap, sound check says it
        can match (and, for the cue-prefix rule, match further back than the trailing run
        already held):

        - digits and IBAN: the last character must be one the rule's reversed pattern starts with;
        - cue prefix ('my na'): it ends in the trailing run unless the character before that run
          is a cue's ',' or ':' or whitespace after a cue word that is not a cue's last;
        - cue and title (the costly ones, ~1.3 µs each): a cue is followed by whitespace and at
          most three name words, so its last word is one of the last four whitespace-separated
          tokens (a one-word cue ends one of them); a title must occur in the tail at all;
        - title prefix ('Pro'): only without the trailing-run rule (which holds it otherwise), and
          only when the text ends in a letter.

        Non-ASCII tails skip the word checks (case-insensitive matching reaches beyond ASCII).
        """
        n = len(text)
        if not n:
            return 0
        window = text[-MAX_MATCH:]
        run = len(window) - len(window.rstrip(_RUN_CHARS))
        longest = run if self._run_tail else 0
        last = text[-1]
        rev = text[-_TAIL_WINDOW:][::-1]
        rules: list[re.Pattern[str]] = []
        if self._digit_tail and (last in _DIGIT_TAIL_LAST or last.isdecimal()):
            rules.append(_TAIL_DIGITS)
        if self._iban and (last == " " or "A" <= last <= "Z" or last.isdecimal()):
            rules.append(_TAIL_IBAN)
        if self._names:
            tail = text[-_TAIL_WINDOW:]
            if tail.isascii():
                toks = tail.lower().rsplit(None, 4)[-4:]
                j = n - run - 1  # the character before the trailing run
                if not self._run_tail or (
                    j >= 0
                    and (
                        text[j] in ",:"
                        or (
                            text[j].isspace()
                            and len(toks) >= (1 if run == 0 else 2)
                            and toks[-1 if run == 0 else -2].endswith(_CUE_NONFINAL)
                        )
                    )
                ):
                    rules.append(_TAIL_CUE_PREFIX)
                if not _CUE_LAST_TOKENS.isdisjoint(toks) or _ONE_WORD_CUE_END.search(" ".join(toks) + " "):
                    rules.append(_TAIL_CUE)
                if _ANY_TITLE.search(tail) is not None:
                    rules.append(_TAIL_TITLE)
            else:
                rules += (_TAIL_CUE_PREFIX, _TAIL_CUE, _TAIL_TITLE)
            if not self._run_tail and "A" <= last <= "z":
                rules.append(_TAIL_TITLE_PREFIX)
        for rx in rules:
            m = rx.match(rev)
            if m is not None and m.end() > longest:
                longest = m.end()
        if self._ids:
            k = _id_tail(text)
            if k > longest:
                longest = k
        return n - longest


# An identifier (`pii_national_id`) is upper-case letters and digits with single separators, at
# most MAX_ID_CHARS long: one that could still grow lies in the trailing run of these characters
# and starts at a letter or digit.
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-/"


def _id_tail(text: str) -> int:
    """How many trailing characters could still begin an identifier."""
    w = text[-MAX_ID_CHARS:]
    tail = w[len(w.rstrip(_ID_CHARS)) :]
    return len(tail.lstrip(" .-/"))


_DIGIT_CHARS = "0123456789"


def _has_digit(text: str) -> bool:
    if text.isascii():
        b = text.encode("ascii")
        return len(b.translate(None, b"0123456789")) != len(b)
    return any(d in text for d in _DIGIT_CHARS)


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
