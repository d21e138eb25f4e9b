"""How `pii-detector` finds personal names: one to three capitalised words after a cue.

A cue is a phrase that introduces a name ("my name is", "this is", "call me", "I'm", sign-offs
such as "Regards,") or a title ("Dr.", "Mrs"). After a phrase cue, a stop list of common
capitalised words keeps "I am Happy to help" and "This is Important" out. The cue and title
tables are also what the streaming tail rules (`pii_tail`) and the word pre-filter read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kt_trio.policies.base import _WORD_TABLE, Span, register_vocabulary


def trie_regex(words: Iterable[str], space: str = " ") -> str:
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


# Names: cue phrases (case-insensitive) and titles, then capitalised words (case-sensitive).
# Phrases that introduce a name (one space between words; matched case-insensitively).
CUES = (
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
TITLES = ("Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof", "Sir", "Dame", "Madam", "Mme", "Herr", "Frau")
_UPPER = "A-ZÀ-ÖØ-Þ"
_LOWER = "a-zß-öø-ÿ"
# A name word: capitalised, optionally O'Brien-style or double-barrelled; at most 45 characters.
_NAME_WORD = rf"[{_UPPER}](?:[{_LOWER}]{{1,20}}|['’][{_UPPER}][{_LOWER}]{{1,20}})(?:-[{_UPPER}][{_LOWER}]{{1,20}})?"
_NAME_WORDS = rf"{_NAME_WORD}(?:[ \t]{_NAME_WORD}){{0,2}}"
_TITLE_ALT = "|".join(sorted(TITLES, key=len, reverse=True))


# Two-phase name search: cues are found on ASCII-lower-cased text by a trie of case-sensitive
# literals (sre then skips ahead by first character: ~3 µs on 300 characters, where
# `\b(?i:...)` took ~18), titles on the original text; the capitalised words are then matched at
# the cue's end on the original text. The words of a cue are one space apart.
CUE = re.compile("(?:" + trie_regex(CUES) + r")\s{1,3}")
TITLE = re.compile(rf"(?:{_TITLE_ALT})\.?\s{{1,3}}")
_NAME_AT = re.compile(rf"(?!(?:{_TITLE_ALT})\b){_NAME_WORDS}(?![{_UPPER}{_LOWER}'’-])")
_WORDISH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'’")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Word pre-filter for names (used when a `TextView` of the text is at hand and its `words` are
# whole, see `TextView.words_are_whole`): a cue can only match where all its words are words of
# the text, a title where its lower-case form is one.
CUE_WORDS: dict[bytes, list[frozenset[bytes]]] = {}
for _c in CUES:
    _ws = _c.encode("ascii").translate(_WORD_TABLE).split()
    CUE_WORDS.setdefault(_ws[0], []).append(frozenset(_ws))
CUE_FIRST = frozenset(CUE_WORDS)
TITLE_WORDS = frozenset(t.lower().encode("ascii") for t in TITLES)
register_vocabulary(TITLE_WORDS.union(*(ws for wss in CUE_WORDS.values() for ws in wss)))

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


def scan_names(
    text: str,
    pos: int,
    spans: list[Span],
    raw: list[tuple[int, int]],
    with_cues: bool = True,
    with_titles: bool = True,
) -> None:
    """NAME spans (and every candidate's raw extent) at or after `pos`: after a cue phrase
    (when `with_cues`) or a title (when `with_titles`) not glued to a word before it."""
    cues: list[tuple[int, int, bool]] = []  # (start, end, is_title)
    if with_cues:
        lower = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
        for m in CUE.finditer(lower, pos):
            s = m.start()
            if s == 0 or lower[s - 1] not in _WORDISH:
                cues.append((s, m.end(), False))
    if with_titles:
        for m in TITLE.finditer(text, pos):
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
