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
from collections.abc import Mapping
from typing import Any, Literal

from attrs import frozen

from kt_trio.records import Action, Direction

OnError = Literal["block", "allow"]

_ACTIONS = frozenset({"block", "redact", "flag", "close", "allow"})
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
    action: Action
    directions: frozenset[Direction]
    on_error: OnError


def common_settings(
    name: str,
    settings: Mapping[str, Any],
    *,
    default_action: Action,
    default_apply_to: str,
    allowed_actions: frozenset[str] = _ACTIONS,
) -> CommonSettings:
    action = settings.get("action") or default_action
    if action not in allowed_actions:
        raise ValueError(f"policy.{name}.action: {action!r} is not one of {sorted(allowed_actions)}")
    apply_to = settings.get("apply_to") or default_apply_to
    if apply_to not in _APPLY_TO:
        raise ValueError(f"policy.{name}.apply_to: {apply_to!r} is not one of input, output, both")
    on_error = settings.get("on_error") or "block"
    if on_error not in ("block", "allow"):
        raise ValueError(f"policy.{name}.on_error: {on_error!r} is not one of block, allow")
    return CommonSettings(action=action, directions=_APPLY_TO[apply_to], on_error=on_error)


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


def word_set(words: str) -> frozenset[bytes]:
    """Trigger words in the form `TextView.words` holds them."""
    return frozenset(w.encode("utf-8") for w in words.split())


class TextView:
    """One text and the cheap views of it that several policies want, each computed once.

    `words` (the set of lower-case ASCII words, as UTF-8 bytes) is the shared pre-filter: a
    policy whose trigger words are all absent skips its regexes entirely, which is what keeps a
    benign message cheap (a set intersection costs ~0.1 µs; one regex pass over 300 characters
    ~5 µs).
    """

    __slots__ = ("_lower", "_words", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._lower: str | None = None
        self._words: frozenset[bytes] | None = None

    @property
    def lower(self) -> str:
        if self._lower is None:
            self._lower = self.text.lower()
        return self._lower

    @property
    def words(self) -> frozenset[bytes]:
        if self._words is None:
            text = self.text
            if text.isascii():
                self._words = frozenset(text.encode("ascii").translate(_WORD_TABLE).split())
            else:
                self._words = frozenset(w.encode("utf-8", "surrogatepass") for w in _UNICODE_WORD.findall(self.lower))
        return self._words
