"""The candidates of the pattern kinds of `pii-detector` and the validators that turn lookalikes away.

Each kind is a regex (compiled once) and a validator: Luhn and issuer prefixes for cards, the
SSA's never-issued ranges for SSNs, the ISO 13616 mod-97 checksum and per-country length for
IBANs, `ipaddress` for IPv6 (e-mail and IPv4 need none beyond their regex). Phones are in
`pii_phone`, national identifiers in `pii_national_id`, names in `pii_names`. The digit kinds
only look inside runs of digits and separators (`CLUSTER`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

# The longest text any detector can match, in characters. E-mail is the longest kind: RFC 5321
# limits a path to 256 octets, so an address is at most 254 characters; the regex below allows a
# 64-character local part and a 190-character domain. The streaming redactor never needs to hold
# back more than this (a longer tail cannot start a match that is still open).
MAX_MATCH = 256

# A validator: the span to redact for a candidate match, or None for a lookalike.
Validator = Callable[[str, re.Match[str]], "tuple[int, int] | None"]

# The local part may hold Latin-1 letters (jürgen@...); the domain is ASCII (IDNs travel as punycode).
EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+\-À-ÖØ-öø-ÿ]{1,64}@(?=[A-Za-z0-9.-]{1,190}(?![A-Za-z0-9.-]))"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?!\d)")
SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\w|\.\d)"
)
IPV6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:)[0-9A-Fa-f:]{2,39}(?![\w:])")


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


def card(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s, e = m.span()
    for end, _ in _prefix_ends(text, s, e, 13, 19, sep=" -"):
        digits = text[s:end].replace(" ", "").replace("-", "")
        if _card_issuer_ok(digits) and _luhn(digits):
            return s, end
    return None


def ssn(text: str, m: re.Match[str]) -> tuple[int, int] | None:
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


def iban(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    s, e = m.span()
    for end, _ in _prefix_ends(text, s, e, 15, 34, sep=" "):
        if _iban_ok(text[s:end].replace(" ", "")):
            return s, end
    return None


def ipv6(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    cand = m.group()
    if not any(c not in ":" for c in cand):
        return None
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return None
    return m.span()


def valid(text: str, m: re.Match[str]) -> tuple[int, int] | None:
    return m.span()


_DIGIT_CHARS = "0123456789"


def has_digit(text: str) -> bool:
    if text.isascii():
        b = text.encode("ascii")
        return len(b.translate(None, b"0123456789")) != len(b)
    return any(d in text for d in _DIGIT_CHARS)


# A run of digits and the separators phone, card, SSN and IPv4 numbers use: every such candidate
# lies inside one run, so the detectors only look there.
CLUSTER = re.compile(r"\d[\d ().+/-]*")
