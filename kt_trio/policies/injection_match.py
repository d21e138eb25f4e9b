"""Finding the lexicon's concepts in a normalised text, every language in two regex scans.

The entries of `injection_lexicon.LEXICON` are compiled into one trie-shaped regex for the
space-separated scripts (tried only at word starts, longest entry first, so a scan of 300
characters costs a few µs whatever the number of languages) and one for Chinese and Japanese
(tried everywhere, only when the text holds such characters). A match names its longest entry;
the shorter entries that end inside it at a word boundary are found from a table built once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from kt_trio.policies.injection_lexicon import GATES, LEXICON
from kt_trio.policies.normalize import fold

_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_COMMON = frozenset(
    "the a an and or in on of to with you your is are be it for me my i we this that at by as all any not no do what "
    "don't de la le el il je tu te du".split()
)
_ENDINGS = (
    "", "s", "es", "e", "ed", "d", "ing", "ion", "ions", "er", "ers", "en", "ung", "ungen", "t", "te", "ten",
    "a", "as", "an", "ar", "o", "os", "i", "ie", "y", "u", "em", "ami", "ach", "ow", "om", "ach", "ej", "ego",
    "ado", "ados", "ada", "adas", "ido", "ida", "ando", "endo", "ato", "ati", "ata", "ate", "ez", "ons", "ent",
    "ly", "al", "ive", "ous", "ment", "ments", "ions", "iones", "ioni", "oes", "ies", "ied", "ying",
)  # fmt: skip


class Hit(NamedTuple):
    """One lexicon entry found: where, which concept, in which language's list."""

    start: int
    end: int
    concept: str
    lang: str


Tag = tuple[str, str]  # (concept, language)


def _trie_regex(entries: Iterable[tuple[str, bool]]) -> str:
    """A regex alternation shaped as a trie over `entries` ((text, prefix?) pairs). At every
    node the longer continuations are tried first; an exact entry's end needs a non-word
    character after it, a prefix entry's end takes the rest of the word."""
    trie: dict[str, Any] = {}
    for text, prefix in entries:
        node = trie
        for ch in text:
            node = node.setdefault(ch, {})
        node[""] = node.get("", False) or prefix  # "" marks an end; True if some entry there is a prefix

    def build(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items(), key=lambda kv: kv[0]) if ch]
        if "" in node:
            alts.append(r"\w*" if node[""] else r"(?!\w)")
        if len(alts) == 1:
            return alts[0]
        return "(?:" + "|".join(alts) + ")"

    return build(trie)


class Matcher:
    """Every (concept, language) of the lexicon found in a folded text, as `Hit`s in text order."""

    def __init__(self, lexicon: dict[str, dict[str, list[str]]] = LEXICON) -> None:
        # entry text -> [(prefix?, tags)]: one text can be an exact word in one language and a
        # stem in another.
        self.tags: dict[str, dict[bool, list[Tag]]] = {}
        for concept, by_lang in lexicon.items():
            for lang, entries in by_lang.items():
                for raw in entries:
                    raw = raw.strip()
                    prefix = raw.endswith("*")
                    text = fold(raw.rstrip("*"))
                    if not text:
                        continue
                    self.tags.setdefault(text, {}).setdefault(prefix, []).append((concept, lang))
        latin = [(t, p) for t, ps in self.tags.items() if not _CJK.search(t) for p in ps]
        cjk = [(t, True) for t in self.tags if _CJK.search(t)]
        # Capture the entry (group 1) and, for a stem, the rest of its word (group 2). Zero-width
        # lookahead: overlapping entries at successive word starts are all found.
        self._latin = re.compile(r"(?<!\w)(?=(" + _trie_regex(latin) + "))")
        self._cjk = re.compile("(?=(" + _trie_regex(cjk) + "))") if cjk else None
        # For each entry, the shorter entries it begins with (found at the same position).
        self._plans: dict[str, tuple[tuple[str, int, int, tuple[Tag, ...], tuple[Tag, ...]], ...]] = {}
        self._shorter: dict[str, tuple[str, ...]] = {
            t: tuple(t[:i] for i in range(1, len(t)) if t[:i] in self.tags) for t in self.tags
        }
        # ASCII words that can begin a gate concept: the policy's pre-filter (`gate_words`).
        words: set[str] = set()
        for text, ps in self.tags.items():
            if not text.isascii():
                continue
            if any(c in GATES for tags in ps.values() for c, _ in tags):
                # One word of a phrase is enough for a sound gate: its least common one.
                ws = re.findall(r"[a-z0-9]+", text)
                rare = [w for w in ws if w not in _COMMON] or ws
                words.add(max(reversed(rare), key=len))
        # A stem's ASCII words are guessed from common endings of the languages written in
        # ASCII: the gate is then sound by construction (the policy skips the rules for an
        # ASCII text with none of these words), at the price of an inflection it did not guess.
        for text, ps in self.tags.items():
            if text.isascii() and any(c in GATES for c, _ in ps.get(True, ())):
                last = re.findall(r"[a-z0-9]+", text)[-1]
                words.update(last + e for e in _ENDINGS)
        self.gate_words = frozenset(words)

    def _plan(self, entry: str) -> tuple[tuple[str, int, int, tuple[Tag, ...], tuple[Tag, ...]], ...]:
        """For a longest entry: each entry it begins with (itself last), its length, whether it
        ends in Chinese or Japanese, and its exact and stem tags, one per concept."""
        plan = self._plans.get(entry)
        if plan is None:
            steps = []
            for cand in (*self._shorter.get(entry, ()), entry):
                ps = self.tags.get(cand)
                if ps is None:
                    continue
                exact = tuple({c: (c, lang) for c, lang in reversed(ps.get(False, []))}.values())
                stem = tuple({c: (c, lang) for c, lang in reversed(ps.get(True, []))}.values())
                # a Chinese or Japanese ending needs no word boundary; "给ai" needs no Latin
                # letter after it, whatever precedes
                cjk = 2 if _CJK.match(cand[-1]) else 1 if _CJK.search(cand) else 0
                steps.append((cand, len(cand), cjk, exact, stem))
            plan = self._plans[entry] = tuple(steps)
        return plan

    def _tags_at(self, text: str, pos: int, entry: str, out: list[Hit], seen: set[tuple[int, str]]) -> None:
        n = len(text)
        for _cand, size, cjk_end, exact, stem in self._plan(entry):
            end = pos + size
            # Chinese and Japanese words have no boundary to check; a Latin word must end.
            if exact and (cjk_end == 2 or end >= n or not text[end].isalnum() or (cjk_end and not text[end].isascii())):
                for concept, lang in exact:
                    if (pos, concept) not in seen:
                        seen.add((pos, concept))
                        out.append(Hit(pos, end, concept, lang))
            if stem:
                stop = end
                if not cjk_end:
                    while stop < n and text[stop].isalnum():
                        stop += 1
                for concept, lang in stem:
                    if (pos, concept) not in seen:
                        seen.add((pos, concept))
                        out.append(Hit(pos, stop, concept, lang))

    def hits(self, folded: str) -> list[Hit]:
        """The concepts found, one hit per (position, concept), in text order."""
        out: list[Hit] = []
        seen: set[tuple[int, str]] = set()
        for m in self._latin.finditer(folded):
            self._tags_at(folded, m.start(), _entry_of(self, m.group(1)), out, seen)
        if self._cjk is not None and _CJK.search(folded):
            for m in self._cjk.finditer(folded):
                self._tags_at(folded, m.start(), _entry_of(self, m.group(1)), out, seen)
        return out


def _entry_of(matcher: Matcher, matched: str) -> str:
    """The lexicon entry a match stands for: the match itself, or for a stem whose word went on
    (`\\w*`), its longest entry prefix."""
    if matched in matcher.tags:
        return matched
    for i in range(len(matched) - 1, 0, -1):
        if matched[:i] in matcher.tags:
            return matched[:i]
    return matched
