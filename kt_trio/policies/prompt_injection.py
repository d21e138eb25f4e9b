"""`prompt-injection`: a scored detector (0..1) of attempts to take over the model.

Signals combine by noisy-OR (`base.combine`): one strong signal passes the default threshold
0.8, weak hints only count together. Two sources, each explainable:

- the multilingual families (`injection_rules`, over the concept lexicon `injection_lexicon`
  found by `injection_match` in the normalised text): `instruction_override` (set aside, or
  declared superseded / revoked / no longer in force), `persona_override` and `developer_mode`
  (personas and modes without limits), `prompt_exfiltration` (repeat / translate / dump what came
  before, the hidden rules), `delimiter_spoofing` (roles written as turns or headers),
  `indirect_injection` (the model addressed inside quoted, forwarded or tool content), in
  English, Spanish, French, German, Portuguese, Italian, Dutch, Polish, Russian, Chinese and
  Japanese;
- the English phrase patterns of issue 3 (`injection_phrases`), chat-template tokens among them.

The text is normalised first (`normalize`: case, accents, zero-width and tag characters,
full-width, homoglyphs inside Latin words, right-to-left overrides read as displayed, leetspeak,
spelled-out letters); the trick undone is named among the signals. Encoded payloads
(`injection_decode`: base64 and URL-safe base64, hex, percent-encoding, `+`-joined values, rot13,
wherever they stand, after `key=` too) are decoded and scored in turn (`encoded_payload`).

A text that talks *about* attacks (prompt injection, jailbreak, detection, "phrases like"...)
halves what it quotes: the price of not blocking every developer who discusses the subject. The
reason names the signals and the text's language. The corpus in tests/data/detection/ and
bench/detection.py keep the weights honest (tests/data/injection_corpus.jsonl and
bench/injection_quality.py, issue 3's, too).
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from kt_trio.config.schema import PromptInjectionSettings
from kt_trio.policies.base import (
    CommonSettings,
    Finding,
    Quiet,
    TextView,
    combine,
    common_settings,
    register_vocabulary,
    word_set,
)
from kt_trio.policies.injection_decode import _decoded_payloads, payloads
from kt_trio.policies.injection_match import Matcher
from kt_trio.policies.injection_phrases import _PHRASES
from kt_trio.policies.injection_rules import asks_how, family_scores
from kt_trio.policies.normalize import normalise

__all__ = ["DEFAULT_THRESHOLD", "NAME", "_PHRASES", "PromptInjection", "_decoded_payloads"]

NAME = "prompt-injection"
DEFAULT_THRESHOLD = PromptInjectionSettings().threshold  # the schema's default, the only one

_DELIMITER_TOKENS = next(rx for _, _, trig, rx in _PHRASES if trig is None)
# trigger word -> indices of the patterns it wakes; patterns with no words wake on '<' or '['.
_BY_WORD: dict[bytes, list[int]] = {}
for _i, _phrase in enumerate(_PHRASES):
    for _w in word_set(_phrase[2] or ""):
        _BY_WORD.setdefault(_w, []).append(_i)
_BY_CHARS = [i for i, (_, _, trig, _) in enumerate(_PHRASES) if trig is None]
_ALL_TRIGGERS = frozenset(_BY_WORD)

# An encoded override has none of the plain trigger words, but rot13 keeps word boundaries.
_ROT13_TRIGGERS = frozenset(codecs.encode(w.decode(), "rot13").encode() for w in _ALL_TRIGGERS if len(w) > 4)
register_vocabulary(_ALL_TRIGGERS | _ROT13_TRIGGERS)

# The multilingual concept lexicon (built once, ~0.3 s); its gate words join the pre-filter.
_MATCHER = Matcher()
_GATE_WORDS = frozenset(w.encode("ascii") for w in _MATCHER.gate_words)
register_vocabulary(_GATE_WORDS)
# Tricks that undo a disguise; alone they say little, with a phrase they name how it was hidden.
_TRICK_WEIGHTS = {"leetspeak": 0.2, "spaced_letters": 0.3, "fullwidth": 0.1, "homoglyphs": 0.45, "zero_width": 0.4,
                  "bidi_override": 0.5, "tag_characters": 0.8}  # fmt: skip
_MAX_DEPTH = 2  # a payload inside a payload is decoded once more, no further

# A quoted stretch: double or typographic quotes, or single quotes that are not apostrophes.
_QUOTED = re.compile(r"[\"“”«„`]([^\"“”«»„`]{4,300})[\"“”»`]|(?<!\w)[‘']([^'‘’\n]{4,300})['’](?!\w)")
_META = re.compile(
    r"\b(?:explain|example|examples|e\.g\.|such\s+as|like|detect|detection|detects|defend|defen[cs]e|protect|attack|attacks|"
    r"injection|jailbreaks|classif\w*|what\s+(?:is|are|does)|how\s+(?:do|does|can)|research|paper|study|article|means?|"
    r"test|tests|filter|blocks?|token|tokens|tag|template|templates|documentation|document|syntax|format|chatml|markup|xml)\b"
)
_DAMP = 0.5

_SPACED = re.compile(r"\b(?:[a-z][ .\-_]){3,}[a-z]\b")

_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u034f\u180e]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_TAGS = re.compile("[\U000e0000-\U000e007f]")
# Cyrillic and Greek letters that look like Latin ones (the common spoofing set).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
        "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "х": "x", "ԁ": "d", "ɡ": "g", "ӏ": "l",
        "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "К": "K", "М": "M", "О": "O", "Р": "P",
        "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y",
        "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
        "Α": "A", "Β": "B", "Ε": "E", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
        "Τ": "T", "Χ": "X", "Υ": "Y", "Ζ": "Z",
    }
)  # fmt: skip
_MIXED_SCRIPT_WORD = re.compile(r"\b(?=\w*[a-zA-Z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+\b")

Signals = dict[str, list[list[float]]]
"""signal -> [[start, end, weight], ...]: matches of one signal that overlap count once, at the
strongest (two patterns reading the same words are one piece of evidence, not two)."""


def _add(signals: Signals, name: str, start: float, end: float, w: float) -> None:
    found = signals.setdefault(name, [])
    for m in found:
        if start < m[1] and m[0] < end:
            m[0], m[1], m[2] = min(m[0], start), max(m[1], end), max(m[2], w)
            return
    found.append([start, end, w])


def _phrase_signals(
    lower: str, signals: Signals, words: frozenset[bytes] | None = None, *, damp: bool = True, only: str | None = None
) -> None:
    """Add the phrase patterns that match `lower` (already lower-case) to `signals`.

    Only patterns whose trigger words occur in the text run (`_BY_WORD`): most texts wake none.
    """
    if words is None:
        words = TextView(lower).words
    wanted: set[int] = set()
    for word in words & _ALL_TRIGGERS:
        wanted.update(_BY_WORD[word])
    if "[" in lower or "<" in lower:
        wanted.update(_BY_CHARS)
    if not wanted:
        return
    meta = damp and _META.search(lower) is not None
    quoted = [m.span(1) if m.group(1) else m.span(2) for m in _QUOTED.finditer(lower)] if meta else []
    for i in sorted(wanted):
        signal, weight, _, rx = _PHRASES[i]
        for m in rx.finditer(lower):
            w = weight
            if meta and (rx is _DELIMITER_TOKENS or any(qs <= m.start() and m.end() <= qe for qs, qe in quoted)):
                w *= _DAMP
            elif damp and "?" in lower and asks_how(lower, m.start()):
                w *= _DAMP  # the user's question about their own tool ("how do I enter debug mode?")
            _add(signals, only or signal, m.start(), m.end(), w)


# Words with both letters and digits ("1gn0re", "y0ur"): two of them make leetspeak worth a look.
_LEET_WORDS = re.compile(r"\b(?=[a-z]*[0-9@$])[a-z0-9@$]*[a-z][a-z0-9@$]*\b")


def _leetspeak(view: TextView) -> bool:
    if not view.has_any_of("0123456789@$"):
        return False
    found = _LEET_WORDS.findall(view.lower)
    return len(found) >= 2 and sum(1 for w in found if not w.isdigit()) >= 2


class PromptInjection:
    name = NAME

    def __init__(self, settings: PromptInjectionSettings | None = None) -> None:
        settings = settings or PromptInjectionSettings()
        self.settings: CommonSettings = common_settings(settings)
        self.threshold = settings.threshold
        # What `score` needs to find anything: a trigger word (or its rot13), a gate word of
        # the multilingual lexicon, a '[' or '<' for the template tokens, a long word (encoded
        # payloads), four one-letter words (spaced letters), or non-ASCII text. Without any,
        # the score is 0: below any threshold > 0.
        self.quiet: Quiet | None = (
            Quiet(_ALL_TRIGGERS | _ROT13_TRIGGERS | _GATE_WORDS, b"[<0123456789@$", short_words=True)
            if self.threshold > 0
            else None
        )

    def score(self, view: TextView) -> tuple[float, dict[str, float]]:
        """The combined score and the score of each signal that fired."""
        score, signals, _ = self.analyse(view)
        return score, signals

    def analyse(self, view: TextView, depth: int = 0) -> tuple[float, dict[str, float], str]:
        """The combined score, the score of each signal that fired, and the text's language."""
        text = view.text
        signals = self._phrase_scores(view)
        language = "en"
        ascii_text = view.ascii is not None
        # The multilingual families: an ASCII text without a gate word has none of them (the
        # pre-filter's promise).
        if (
            not ascii_text
            or not _GATE_WORDS.isdisjoint(view.hits)
            or (view.has_any_of("0123456789@$") and _leetspeak(view))
        ):
            folded, tricks = normalise(text)
            hits = _MATCHER.hits(folded)
            families, _, language = family_scores(folded, hits)
            if tricks.alternate is not None:
                alt_hits = _MATCHER.hits(tricks.alternate)
                for name, w in family_scores(tricks.alternate, alt_hits)[0].items():
                    families[name] = max(families.get(name, 0.0), w)
            for name, w in families.items():
                signals[name] = max(signals.get(name, 0.0), w)
            if families:
                for trick in tricks.names:
                    signals[trick] = max(signals.get(trick, 0.0), _TRICK_WEIGHTS.get(trick, 0.2))
        if depth < _MAX_DEPTH:
            found = payloads(
                text, view.ascii, len(text) >= 16 and (view.has_word_longer_than(11) or view.has_spaced_hex())
            )
            if not _ROT13_TRIGGERS.isdisjoint(view.hits):
                found.append(codecs.encode(text, "rot13"))
            for payload in found:
                if payload == text:
                    continue
                inner, _, lang = self.analyse(TextView(payload), depth + 1)
                if inner >= 0.5:
                    signals["encoded_payload"] = max(signals.get("encoded_payload", 0.0), combine([inner, 0.3]))
                    language = lang
        if not signals:
            return 0.0, {}, language
        return combine(list(signals.values())), signals, language

    def _phrase_scores(self, view: TextView) -> dict[str, float]:
        """The English phrase patterns (`injection_phrases`) and the Unicode tricks."""
        text = view.text
        words = view.hits  # the trigger words below are registered: same answers as view.words
        signals: Signals = {}
        if not _ALL_TRIGGERS.isdisjoint(words) or "[" in text or "<" in text:
            _phrase_signals(view.lower, signals, words)
        if not text.isascii():
            self._unicode_signals(text, signals)
        if view.count_one_letter_words() >= 4:
            lower = view.lower
            spaced = _SPACED.sub(lambda m: re.sub(r"[ .\-_]", "", m.group()), lower)
            if spaced != lower:
                found: Signals = {}
                _phrase_signals(spaced, found, only="spaced_letters")
                if found:  # the phrase counts, under the name of the trick that hid it
                    _add(
                        signals, "spaced_letters", -1.0, -1.0, combine([0.3, *(m[2] for m in found["spaced_letters"])])
                    )
        if not signals:
            return {}
        return {name: combine([m[2] for m in ms]) for name, ms in signals.items()}

    def _unicode_signals(self, text: str, signals: Signals) -> None:
        tricks: dict[str, float] = {}
        if _ZERO_WIDTH.search(text):
            tricks["zero_width"] = 0.4
        if _BIDI.search(text):
            tricks["bidi_override"] = 0.5
        if _TAGS.search(text):
            tricks["tag_characters"] = 0.8
        if _MIXED_SCRIPT_WORD.search(text):
            tricks["homoglyphs"] = 0.45
        normalised = unicodedata.normalize("NFKC", text)
        if tricks or normalised != text:
            cleaned = _TAGS.sub("", _BIDI.sub("", _ZERO_WIDTH.sub("", normalised))).translate(_HOMOGLYPHS)
            if cleaned != text:
                _phrase_signals(cleaned.lower(), signals)
        for name, w in tricks.items():
            _add(signals, name, -1.0, -1.0, w)

    def inspect(self, view: TextView) -> Finding | None:
        if self.quiet is not None and view.is_quiet(self.quiet):
            return None
        score, signals, language = self.analyse(view)
        if score < self.threshold:
            return None
        names = sorted(signals, key=lambda s: -signals[s])
        return Finding(
            reason=f"prompt injection (score {score:.2f}, language {language}): {', '.join(names)}", score=score
        )
