"""What every built-in policy shares: its settings and the shape of what it finds.

A policy is pure code over text: it never sees bytes, sockets or JSON. The chain
(`kt_trio.policies.chain`) finds the text slots of a message, asks each policy in order, and
turns findings into a `Verdict` and `PolicyDecision`s.

Two kinds of policy:

- span policies (`pii-detector`) find `Span`s in a text; the chain redacts, blocks or flags.
  They also run over streamed output through `kt_trio.policies.streaming`.
- scoring policies (`prompt-injection`, `safety-filter`) return a `Finding` with a score in
  0..1 when it reaches their threshold. `new_from` lets the chain re-read a sliding window of
  streamed text and only hear about matches that end in the newly arrived part.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Literal, Protocol, cast

from attrs import frozen

from kt_trio.records import Action, Direction

OnError = Literal["block", "allow"]

_APPLY_TO: dict[str, frozenset[Direction]] = {
    "input": frozenset({"input"}),
    "output": frozenset({"output"}),
    "both": frozenset({"input", "output"}),
}


@frozen
class Span:
    """One match inside a text. `start`/`end` is what is replaced; `hold_start`/`hold_end` the
    whole stretch the pattern needed (a name's cue phrase), which the streaming redactor must
    not cut."""

    start: int
    end: int
    kind: str
    hold_start: int
    hold_end: int


@frozen
class Finding:
    """What a scoring policy concluded: a reason naming the signals that fired, never the text."""

    reason: str
    score: float | None = None
    kinds: tuple[str, ...] = ()


@frozen
class CommonSettings:
    """The settings the chain reads of every policy, from its typed `policy.<name>` block."""

    action: Action
    directions: frozenset[Direction]
    on_error: OnError


class TypedSettings(Protocol):
    """What every policy's settings class in `kt_trio.config.schema` has in common."""

    @property
    def action(self) -> str: ...
    @property
    def apply_to(self) -> str: ...
    @property
    def on_error(self) -> str: ...


def common_settings(settings: TypedSettings) -> CommonSettings:
    """The common part of a policy's typed settings (the schema's classes, whose defaults are
    the only defaults: the loader has checked every value against them)."""
    return CommonSettings(
        action=cast(Action, settings.action),
        directions=_APPLY_TO[settings.apply_to],
        on_error=cast(OnError, settings.on_error),
    )


def combine(weights: list[float]) -> float:
    """Noisy-OR: independent signals each raise the score, none alone can pass 1."""
    p = 1.0
    for w in weights:
        p *= 1.0 - w
    return round(1.0 - p, 4)


# ASCII upper-case to lower-case and punctuation to spaces, as a bytes table: translating the
# UTF-8 bytes is ~2x faster than `str.translate` with a dict. Non-ASCII text takes a regex instead
# (so that invisible or foreign characters glued to a word do not hide it).
_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c"
_WORD_TABLE = bytes.maketrans(
    (string.ascii_uppercase + _PUNCT).encode("ascii"), (string.ascii_lowercase + " " * len(_PUNCT)).encode("ascii")
)
_UNICODE_WORD = re.compile(r"[^\W_]+")


# For ASCII text, one more bytes table gives the *shape* of the words: every byte `words` splits
# on becomes a space, every other byte an 'x'. Word-length questions are then substring tests
# (`b"x" * 12 in shape`: is any word 12 or more long?), ~0.1 µs where `map(len, words)` took ~1.
_SEPARATORS = (_PUNCT + " ").encode("ascii")
_SHAPE_TABLE = bytes(0x20 if i in _SEPARATORS else 0x78 for i in range(256))
# Hex digits as 'h', the separators of hex byte pairs (' ', ':') as 's', anything else '.': ten
# separated pairs (`HEX_SPACED`, "69 67 6e 6f ...") are a hex payload no long word gives away.
HEX_TABLE = bytes(0x68 if chr(i) in string.hexdigits else 0x73 if chr(i) in " :" else 0x2E for i in range(256))
HEX_SPACED = b"hhs" * 9 + b"hh"
# `has_word_longer_than`'s needles for the lengths the policies ask about, made once.
_RUNS = {n: b"x" * (n + 1) for n in (11,)}
# The control characters `words` does not split on (a word glued to one of
# them is not in `words` as itself, so word-based pre-filters must not be trusted there).
_CONTROLS = bytes(i for i in range(0x20) if i not in _SEPARATORS) + b"\x7f"
# ASCII characters some pre-filter asks about (`has_any_of`, `words_are_whole`, `Quiet`):
# digits, the leetspeak symbols, '@', ':', '[', '<', and the controls. `TextView.special` keeps only these (one
# `translate`), and is empty for most text, so each question about them is then answered at once.
_SPECIAL = b"0123456789@$:[<" + _CONTROLS
_NOT_SPECIAL = bytes(i for i in range(128) if i not in _SPECIAL)
_CHARS: dict[str, tuple[bytes, bool]] = {}  # has_any_of's argument -> (its bytes, all special?)


def word_set(words: str) -> frozenset[bytes]:
    """Trigger words in the form `TextView.words` holds them."""
    return frozenset(w.encode("utf-8") for w in words.split())


# Every word some policy's pre-filter looks for (each policy module registers its own at import).
# `TextView.hits` is the text's words that are in it: what those pre-filters need, found without
# building the set of all the text's words (~0.5 µs instead of ~1 on 300 characters).
_vocabulary: frozenset[bytes] = frozenset()


def register_vocabulary(words: frozenset[bytes] | set[bytes]) -> None:
    global _vocabulary
    _vocabulary = _vocabulary | frozenset(words)


# The words of one ASCII character `words` can hold (letters are lower-cased, separators split).
_ONE_BYTE_WORDS = frozenset(bytes([i]) for i in range(128) if i not in _SEPARATORS and not 0x41 <= i <= 0x5A)
register_vocabulary(_ONE_BYTE_WORDS)


@frozen
class Quiet:
    """A policy's own sound pre-filters, stated as data: a text that is ASCII, holds none of
    `chars` (all from `_SPECIAL`), none of `words` (registered vocabulary) and, with
    `short_words`, no word over 11 characters (when it is 16 or longer), no run of ten spaced hex
    pairs and fewer than four one-letter words, is one in which the policy certainly finds nothing. `TextView.is_quiet`
    answers it from the view's cached checks (~0.3 µs), so a benign text skips the policy's
    regexes and most of its Python."""

    words: frozenset[bytes]
    chars: bytes
    short_words: bool = False

    def __attrs_post_init__(self) -> None:
        # `is_quiet` only sees `_SPECIAL` characters and registered words: anything else would
        # make it answer "quiet" wrongly.
        if not all(c in _SPECIAL for c in self.chars) or not self.words <= _vocabulary:
            raise ValueError("Quiet: characters outside _SPECIAL or words never registered")

    @staticmethod
    def union(quiets: Sequence[Quiet]) -> Quiet:
        """A `Quiet` that holds only where every one of `quiets` does (their characters and words
        together, `short_words` if any asks for it): one check for a whole chain of policies."""
        return Quiet(
            frozenset().union(*(q.words for q in quiets)),
            bytes(sorted(set(b"".join(q.chars for q in quiets)))),
            any(q.short_words for q in quiets),
        )


class TextView:
    """One text and the cheap views of it that several policies want, each computed once.

    `words` (the set of lower-case ASCII words, as UTF-8 bytes) is the shared pre-filter: a
    policy whose trigger words are all absent skips its regexes entirely, which is what keeps a
    benign message cheap (a set intersection costs ~0.1 µs; one regex pass over 300 characters
    ~5 µs).
    """

    __slots__ = ("_ascii", "_hex", "_hits", "_long", "_lower", "_ones", "_shape", "_special", "_words", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._ones = -1  # `count_one_letter_words`, once asked
        self._long = -1  # `has_word_longer_than(11)` (what the pre-filters ask), once asked: 0 or 1
        self._hex = -1  # `has_spaced_hex`, once asked: 0 or 1
        self._ascii: bytes | None = None
        self._lower: str | None = None
        self._words: frozenset[bytes] | None = None
        self._shape: bytes | None = None
        self._special: bytes | None = None
        self._hits: frozenset[bytes] | None = None

    @property
    def ascii(self) -> bytes | None:
        """The text as bytes when it is ASCII, else None."""
        b = self._ascii
        if b is None and self.text.isascii():
            b = self._ascii = self.text.encode("ascii")
        return b

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    @property
    def words(self) -> frozenset[bytes]:
        if self._words is None:
            b = self.ascii
            if b is not None:
                self._words = frozenset(b.translate(_WORD_TABLE).split())
            else:
                self._words = frozenset(w.encode("utf-8", "surrogatepass") for w in _UNICODE_WORD.findall(self.lower))
        return self._words

    @property
    def hits(self) -> frozenset[bytes]:
        """`words` & the registered vocabulary (`register_vocabulary`): for a pre-filter over
        registered words, the same answer as `words`."""
        hits = self._hits
        if hits is None:
            words = self._words
            if words is not None:
                hits = words & _vocabulary
            else:
                b = self.ascii
                if b is not None:
                    hits = _vocabulary.intersection(b.translate(_WORD_TABLE).split())
                else:
                    hits = self.words & _vocabulary
            self._hits = hits
        return hits

    def _shape_of(self, b: bytes) -> bytes:
        shape = self._shape
        if shape is None:
            shape = self._shape = (b" " + b + b" ").translate(_SHAPE_TABLE)
        return shape

    def has_word_longer_than(self, n: int) -> bool:
        """Whether some member of `words` has more than `n` characters (bytes, for non-ASCII).
        Cached for n = 11, which several pre-filters of one message ask."""
        if n == 11 and self._long >= 0:
            return self._long == 1
        b = self.ascii
        if b is None:
            words = self.words
            found = bool(words) and max(map(len, words)) > n
        else:
            # `find`, not `in`: `bytes in bytes` first tries the operand as an int and formats
            # the TypeError it then discards (~3,000 instructions per test, on every message).
            found = self._shape_of(b).find(_RUNS.get(n) or b"x" * (n + 1)) >= 0
        if n == 11:
            self._long = 1 if found else 0
        return found

    def has_spaced_hex(self) -> bool:
        """Whether the text holds ten hex byte pairs separated by ' ' or ':' (ASCII text; a
        non-ASCII one answers True, leaving the search to the caller)."""
        if self._hex < 0:
            b = self.ascii
            self._hex = 1 if b is None or b.translate(HEX_TABLE).find(HEX_SPACED) >= 0 else 0  # `find`: see above
        return self._hex == 1

    def count_one_letter_words(self) -> int:
        """How many distinct members of `words` have one character (cached: several policies'
        pre-filters ask)."""
        n = self._ones
        if n < 0:
            if self._ascii is not None or self.ascii is not None:
                # Every one-byte word is registered vocabulary (below), so `hits` holds them all.
                hits = self._hits
                n = len((hits if hits is not None else self.hits) & _ONE_BYTE_WORDS)
            else:
                n = sum(1 for w in self.words if len(w) == 1)
            self._ones = n
        return n

    @property
    def special(self) -> bytes | None:
        """The text's characters from `_SPECIAL`, in order (ASCII text only, else None)."""
        sp = self._special
        if sp is None:
            b = self.ascii
            if b is None:
                return None
            sp = self._special = b.translate(None, _NOT_SPECIAL)
        return sp

    def is_quiet(self, q: Quiet) -> bool:
        """Whether `q` says its policy finds nothing in this text (see `Quiet`)."""
        # The cached views read directly when there (each property is a Python call; several
        # policies ask this of one message).
        sp = self._special
        if sp is None:
            sp = self.special
        if sp is None or (sp and len(sp.translate(None, q.chars)) != len(sp)):
            return False
        hits = self._hits
        if not q.words.isdisjoint(hits if hits is not None else self.hits):
            return False
        if q.short_words:
            if len(self.text) >= 16 and (self.has_word_longer_than(11) or self.has_spaced_hex()):
                return False
            if self.count_one_letter_words() >= 4:
                return False
        return True

    def has_any_of(self, chars: str) -> bool:
        """Whether the text holds any of `chars` (ASCII characters)."""
        sp = self._special
        if sp is None:
            sp = self.special
        if sp is None:
            text = self.text
            return any(c in text for c in chars)
        info = _CHARS.get(chars)
        if info is None:
            enc = chars.encode("ascii")
            info = _CHARS[chars] = (enc, all(c in _SPECIAL for c in enc))
        enc, all_special = info
        if all_special:
            return bool(sp) and len(sp.translate(None, enc)) != len(sp)
        b = self.ascii
        assert b is not None
        return len(b.translate(None, enc)) != len(b)

    @property
    def words_are_whole(self) -> bool:
        """True when every run of letters between separators is one member of `words`: ASCII
        text without the control characters `words` does not split on."""
        sp = self._special
        if sp is None:
            sp = self.special
        return sp is not None and (not sp or len(sp.translate(None, _CONTROLS)) == len(sp))
