"""Encoded payloads: the text that base64, hex, URL-encoding or rot13 hides, to be scored too.

`_decoded_payloads` finds base64 and hex runs (with sound byte-class pre-filters, so a text with
no such run costs one `translate`); `more_payloads` adds what the older search does not read:
URL-safe base64 (a JWT-like `-`/`_` alphabet), percent-encoding and `+`-joined query values.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
import urllib.parse

from kt_trio.policies.base import HEX_SPACED, HEX_TABLE

_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=])")
# Hex: pairs of hex digits, each maybe followed by one ' ' or ':', or '\\x' escapes. Without
# '\\x' in the text only the first form can match, and only inside the runs its pre-filter
# finds (below), so sre no longer tries the alternation at every position of every text that
# has a long word (~10 µs on 150 characters). The lookahead is implied by what follows it (ten
# pairs are 20 or more of those characters); sre gives up sooner with it.
_HEX_PAIRS = re.compile(r"(?=[0-9A-Fa-f :]{20})(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){10,}(?![0-9A-Fa-f])")
# Both forms in one scan, as the check always read them: where '\\x' occurs they can touch (the
# pairs of '\\x73' then begin a run '7374...'), and the first to match in text order wins.
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){10,}(?![0-9A-Fa-f])|(?:\\x[0-9A-Fa-f]{2}){8,}")

# Cheap, sound pre-filters for `_decoded_payloads`, on the text's UTF-8 bytes mapped to classes
# by one `translate` (the regexes read ASCII characters only; any other byte is in no class):
# - `_B64` needs a run of 16 base64 characters: 'x' * 16 in the base64 map;
# - `_HEX_PAIRS` needs ten pairs: two with no separator between them ('hhhh' in the hex map) or
#   all ten separated ('hhs' * 9 + 'hh');
# - `_HEX` (with escapes) needs a backslash-x.
# A text sent here for a long word usually passes none: an English word is a base64 run of 16
# only when it has 16 letters, and English seldom has four hex digits in a row.
_B64_MAP = bytes(0x78 if chr(i) in string.ascii_letters + string.digits + "+/" else 0x20 for i in range(256))
_HEX_MAP = HEX_TABLE
_B64_RUN = b"x" * 16
_HEX_ADJACENT = b"hhhh"
_HEX_SPACED = HEX_SPACED
_HEX_RUN = re.compile(rb"[hs]{20,}")
_DIGITS = b"0123456789"


def _printable_ratio(s: str) -> float:
    if not s:
        return 0.0
    if s.isprintable():  # the common answer, without a Python step per character
        return 1.0
    return sum(1 for c in s if c.isprintable() or c in "\n\t") / len(s)


def _utf8(b: bytes) -> str | None:
    """`b.decode("utf-8")`, or None where that raises: most candidates are not text, and
    decoding with replacement marks them without the cost of an exception (~0.8 µs). Only
    bytes that hold an encoded U+FFFD themselves take the strict decode to tell."""
    s = b.decode("utf-8", "replace")
    if "\ufffd" not in s:
        return s
    if b"\xef\xbf\xbd" not in b:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64_tokens(text: str, raw: bytes, b64: bytes | None = None, starts: list[int] | None = None) -> list[str]:
    """The matches of `_B64.finditer(text)` that mix cases (a run of one case is a long plain
    word or a URL's path such as 'docs/troubleshooting', not base64: text encoded in base64 mixes
    cases, 16 characters of one case have odds of ~(38/64)**16 = 2e-4). Only the runs of 16 or
    more base64 characters are tried (`b64`: `raw.translate(_B64_MAP)`, `starts`: `_runs(b64)`,
    when the caller has them)."""
    if b64 is None:
        b64 = raw.translate(_B64_MAP)
    if starts is None:
        starts = _runs(b64)
    if not starts:
        return []
    if len(raw) != len(text):  # not ASCII: byte offsets are not character offsets
        return [tok for tok in (m.group() for m in _B64.finditer(text)) if not (tok.islower() or tok.isupper())]
    # A match begins where a run begins (the lookbehind refuses any later start) and ends where
    # it ends (with its '=' padding, which has no case): a run of one case is skipped before
    # the regex, and one anchored try per other run finds the rest.
    out: list[str] = []
    for i in starts:
        end = b64.find(b" ", i)
        run = text[i:end] if end >= 0 else text[i:]
        if run.islower() or run.isupper():
            continue
        m = _B64.match(text, i)
        if m is not None:
            out.append(m.group())
    return out


def _runs(b64: bytes) -> list[int]:
    """Where each run of 16 or more base64 characters begins in `b64` (`_B64_MAP` classes)."""
    out: list[int] = []
    i = b64.find(_B64_RUN)
    while i >= 0:
        out.append(i)
        end = b64.find(b" ", i)
        if end < 0:
            break
        i = b64.find(_B64_RUN, end)
    return out


def _hex_matches(text: str, raw: bytes) -> list[re.Match[str]]:
    """`_HEX.finditer(text)`: without a '\\x' in the text, `_HEX_PAIRS` tried only inside long
    runs of hex digits and separators that hold two adjacent pairs or ten separated ones."""
    if "\\x" in text:
        return list(_HEX.finditer(text))
    out: list[re.Match[str]] = []
    hexes = raw.translate(_HEX_MAP)
    # `find`, not `in`: `bytes in bytes` formats and discards a TypeError first (~3,000 instructions).
    if hexes.find(_HEX_ADJACENT) >= 0 or hexes.find(_HEX_SPACED) >= 0:
        if len(raw) != len(text):  # not ASCII: byte offsets are not character offsets
            out.extend(_HEX_PAIRS.finditer(text))
        else:
            # Every match lies inside one run of 20 or more hex digits and separators, and holds
            # two adjacent pairs or ten separated ones: search only such runs.
            for run in _HEX_RUN.finditer(hexes):
                lo, hi = run.span()
                if _HEX_ADJACENT in run.group() or _HEX_SPACED in run.group():
                    out.extend(_HEX_PAIRS.finditer(text, lo, hi))
    return out


def _decoded_payloads(
    text: str, raw: bytes | None = None, b64: bytes | None = None, starts: list[int] | None = None
) -> list[str]:
    """The printable UTF-8 texts that the base64 runs of `text`, then its hex runs (each in
    text order), decode to.

    Each regex is tried only where its pre-filter (above) says it can match. Work stays linear
    in the text: every candidate is decoded (a cap on their number would let decoys hide a
    payload behind them).
    """
    out: list[str] = []
    if raw is None:
        raw = text.encode("utf-8", "surrogatepass")
    for tok in _b64_tokens(text, raw, b64, starts):
        try:
            s = _utf8(base64.b64decode(tok + "=" * (-len(tok) % 4), validate=False))
        except (binascii.Error, ValueError):
            continue
        if s is not None and _printable_ratio(s) > 0.9:
            out.append(s)
    # Hex of any text that holds an ASCII character has a digit (an ASCII byte's first hex
    # digit is 0-7); hex without digits decodes to bytes 0xaa-0xff only, no letter of an
    # instruction. So a text without digits skips the hex search.
    if len(raw.translate(None, _DIGITS)) == len(raw):
        return out
    for m in _hex_matches(text, raw):
        tok = re.sub(r"\\x|[ :]", "", m.group())
        try:
            s = _utf8(bytes.fromhex(tok))
        except ValueError:
            continue
        if s is not None and _printable_ratio(s) > 0.9:
            out.append(s)
    return out


_B64URL = re.compile(r"(?<![A-Za-z0-9+/=_\-])[A-Za-z0-9_\-]{16,}={0,2}(?![A-Za-z0-9+/=_\-])")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}[^%\s]{0,3}){3,}")
# Base64 right after a parameter's '=' or ':' (the older search wants no '=' before a run).
_AFTER_KEY = re.compile(r"(?<=[=:])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/])")
_AFTER_KEY_AT = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/])")


def _after_key(text: str, b64: bytes, starts: list[int] | None = None) -> list[re.Match[str]]:
    """`_AFTER_KEY.finditer(text)`; `b64` is the text's UTF-8 bytes through `_B64_MAP` (`starts`:
    `_runs(b64)`, when the caller has it). A match begins where a run of 16 or more base64
    characters begins (the character before it, '=' or ':', is none), so in ASCII text one
    anchored try per such run that follows '=' or ':' finds them all (a URL's path costs one
    `find`, not a lookbehind at every position). Matches cannot overlap: one holds no ':', and
    '=' only as padding that no base64 character follows."""
    if len(b64) != len(text):  # not ASCII: byte offsets are not character offsets
        return list(_AFTER_KEY.finditer(text))
    out: list[re.Match[str]] = []
    for i in _runs(b64) if starts is None else starts:
        if i and text[i - 1] in "=:":
            m = _AFTER_KEY_AT.match(text, i)
            if m is not None:
                out.append(m)
    return out


_PLUS_JOINED = re.compile(r"[A-Za-z]+(?:\+[A-Za-z']+){3,}")


def payloads(text: str, raw: bytes | None, long_word: bool) -> list[str]:
    """Every payload to score: `more_payloads`, then, with `long_word` (the text has a word over
    11 characters or spaced hex: `_decoded_payloads`' reason to look), `_decoded_payloads`.
    `raw`: the text's ASCII bytes when it is ASCII. One base64 map serves both: without a run of
    16 base64 characters neither base64 search can match."""
    if raw is None:
        raw = text.encode("utf-8", "surrogatepass")
    b64 = raw.translate(_B64_MAP)
    starts = _runs(b64)
    out = more_payloads(text, b64, starts)
    if long_word:
        out += _decoded_payloads(text, raw, b64, starts)
    return out


def more_payloads(text: str, b64: bytes | None = None, starts: list[int] | None = None) -> list[str]:
    """Payloads `_decoded_payloads` does not read: URL-safe base64 runs (with '-' or '_'),
    percent-encoded stretches (three or more escapes) and words joined by '+' (a form value).
    `b64`: the text's UTF-8 bytes through `_B64_MAP` (`starts`: `_runs(b64)`), when the caller
    has them."""
    out: list[str] = []
    if "-" in text or "_" in text:
        for m in _B64URL.finditer(text):
            tok = m.group()
            if "-" not in tok and "_" not in tok:
                continue
            if not any(c.isdigit() or c.isupper() for c in tok):
                continue  # snake_case or kebab-case words, not base64
            try:
                s = _utf8(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
            except (binascii.Error, ValueError):
                continue
            if s is not None and _printable_ratio(s) > 0.9:
                out.append(s)
    if "=" in text or ":" in text:
        if b64 is None:
            b64 = text.encode("utf-8", "surrogatepass").translate(_B64_MAP)
        for m in _after_key(text, b64, starts):
            try:
                s = _utf8(base64.b64decode(m.group() + "=" * (-len(m.group()) % 4), validate=False))
            except (binascii.Error, ValueError):
                continue
            if s is not None and _printable_ratio(s) > 0.9:
                out.append(s)
    if "%" in text and _PERCENT.search(text):
        out.append(urllib.parse.unquote_plus(text))
    if "+" in text:
        out.extend(m.group().replace("+", " ") for m in _PLUS_JOINED.finditer(text))
    return out
