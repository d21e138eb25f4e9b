"""Text normalisation for detectors: what a reader sees, in one comparable form.

An attacker hides a phrase from a matcher without hiding it from the model: invisible
characters inside words, right-to-left overrides that display reversed text the right way
round, full-width or lookalike letters, accents, leetspeak, letters spelled out with spaces.
`normalise` undoes each of these and reports which it undid (`Tricks`), so the detector scores
the text as read and names the trick in its reason. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata

from attrs import define, field

# Zero-width and other invisible format characters (soft hyphen, joiners, word joiner, BOM,
# Mongolian vowel separator, combining grapheme joiner).
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060-\u2064\ufeff\u00ad\u034f\u180e\u115f\u1160\u3164]")
_BIDI_CONTROL = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")
# A right-to-left override displays what follows reversed, up to its pop (or isolate end, or line
# end): the reader sees the reversal, so the detector reads it too.
_RLO_SPAN = re.compile("\u202e([^\u202c\u2069\n]*)")
# Unicode tag characters mirror ASCII invisibly (U+E0020..E007E): read them as the ASCII they hide.
_TAGS = re.compile("[\U000e0000-\U000e007f]+")

# Letters from other scripts that look like Latin ones (the common confusables), applied only
# inside words that mix them with Latin letters: Russian and Greek text stays itself.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
        "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ӏ": "l", "ү": "y",
        "ɡ": "g", "ı": "i", "ȷ": "j", "ɑ": "a", "ο": "o", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v",
        "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ѡ": "w", "ԝ": "w", "ɩ": "i",
    }
)  # fmt: skip
_MIXED_WORD = re.compile(r"\w*[a-z]\w*|\w+")
_NON_LATIN_LOOKALIKE = re.compile("[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f\u0250-\u02af\u0131\u0237]")
# Leetspeak inside a word that also has letters ("1gn0re", "pr3v10us"); plain numbers stay.
_LEET_WORD = re.compile(r"\b(?=[a-z]*[0-9@$])(?=[0-9@$]*[a-z])[a-z0-9@$]{3,}\b")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "8": "b"})
_LEET_L = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "8": "b"})
# Letters spelled out one by one: "i g n o r e", "D-i-s-r-e-g-a-r-d".
_SPACED = re.compile(r"(?<!\w)(?:\w[ .\-_*]){3,}\w(?!\w)")
_SPACED_SEP = re.compile(r"[ .\-_*]")
_SPACES = re.compile(r"[^\S\n]+")
# Cheap necessary conditions for the two above (sre finds a literal pair faster than it tries
# lookaheads at every word start).
_MAYBE_LEET = re.compile(r"[a-z][0-9@$]|[0-9@$][a-z]")
_MAYBE_SPACED = re.compile(r"\w[ .\-_*]\w[ .\-_*]\w")


@define
class Tricks:
    """What `normalise` undid: each is a hint of intent in its own right."""

    zero_width: bool = False
    bidi_override: bool = False
    tag_characters: bool = False
    homoglyphs: bool = False
    fullwidth: bool = False
    leetspeak: bool = False
    spaced_letters: bool = False
    names: list[str] = field(factory=list)
    alternate: str | None = None  # a second reading (leetspeak's '1' as 'l' rather than 'i')

    def note(self, name: str) -> None:
        setattr(self, name, True)
        self.names.append(name)


def _strip_marks(s: str) -> str:
    """Accents off (NFD, drop combining marks), for Latin, Greek and Cyrillic only: kana voicing
    marks and other scripts' combining signs change the letter, not its accent."""
    d = unicodedata.normalize("NFD", s)
    if d == s:
        return s
    out = []
    prev = ""
    for c in d:
        if unicodedata.combining(c) and prev and prev < "\u0530":
            continue
        out.append(c)
        prev = c
    return unicodedata.normalize("NFC", "".join(out))


def _join_spaced(m: re.Match[str]) -> str:
    return _SPACED_SEP.sub("", m.group())


# Latin letters that carry their mark in the letter itself (no decomposition to strip).
_BARRED = str.maketrans({"ł": "l", "đ": "d", "ø": "o", "ħ": "h", "ŧ": "t", "æ": "ae", "œ": "oe", "ı": "i"})


def fold(text: str) -> str:
    """Case-folded, accent-free, whitespace-collapsed form of `text` (used for lexicon entries
    too, so both sides compare in the same form)."""
    if text.isascii():  # nothing to compose, strip or map: only case and spaces
        return _SPACES.sub(" ", text.lower())
    return _SPACES.sub(" ", _strip_marks(unicodedata.normalize("NFKC", text).casefold()).translate(_BARRED))


def normalise(text: str) -> tuple[str, Tricks]:
    """The text as a reader sees it, folded (`fold`), and the tricks that were undone."""
    tricks = Tricks()
    if not text.isascii():
        if "\u202e" in text:
            tricks.note("bidi_override")
            text = _RLO_SPAN.sub(lambda m: m.group(1)[::-1], text)
        if _BIDI_CONTROL.search(text):
            if not tricks.bidi_override:
                tricks.note("bidi_override")
            text = _BIDI_CONTROL.sub("", text)
        if _ZERO_WIDTH.search(text):
            tricks.note("zero_width")
            text = _ZERO_WIDTH.sub("", text)
        if _TAGS.search(text):
            tricks.note("tag_characters")
            text = _TAGS.sub(lambda m: "".join(chr(ord(c) - 0xE0000) for c in m.group()), text)
        nfkc = unicodedata.normalize("NFKC", text)
        if nfkc != text and any("\uff01" <= c <= "\uff5e" for c in text):
            tricks.note("fullwidth")
    if _MAYBE_SPACED.search(text) and _SPACED.search(text):
        joined = _SPACED.sub(_join_spaced, text)
        if joined != text:
            tricks.note("spaced_letters")
            text = joined
    folded = fold(text)
    if not folded.isascii() and _NON_LATIN_LOOKALIKE.search(folded):

        def unconfuse(m: re.Match[str]) -> str:
            w = m.group()
            if _NON_LATIN_LOOKALIKE.search(w) and re.search("[a-z]", w):
                return w.translate(_CONFUSABLES)
            return w

        unconfused = _MIXED_WORD.sub(unconfuse, folded)
        if unconfused != folded:
            tricks.note("homoglyphs")
            folded = unconfused
    if _MAYBE_LEET.search(folded) and _LEET_WORD.search(folded):
        leet = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), folded)
        if leet != folded:
            tricks.note("leetspeak")
            if "1" in folded:
                tricks.alternate = _LEET_WORD.sub(lambda m: m.group().translate(_LEET_L), folded)
            folded = leet
    return folded, tricks
