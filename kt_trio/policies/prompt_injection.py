"""`prompt-injection`: a scored detector (0..1) of attempts to take over the model.

Each pattern has a weight; a signal (family of patterns) scores the noisy-OR of its patterns
that matched (each counted once), and the message scores the noisy-OR of its signals
(`base.combine`). So one strong phrase passes the default threshold 0.8 and weak hints only
count together:

- `instruction_override`: "ignore/disregard/forget ... previous/system ... instructions/rules",
  "do not follow your instructions", "set aside whatever you were told", "the previous context
  is void", "disable all filters", "new instructions:".
- `persona_override`: "you are now DAN / an unrestricted AI", "pretend you have no rules",
  "act as an unfiltered model", "from now on you will".
- `developer_mode`: "developer mode", "DAN mode", "do anything now", "jailbreak".
- `prompt_exfiltration`: "reveal/print/repeat your system prompt / initial instructions",
  "what are your instructions", "repeat the text above verbatim", "starting with 'You are'".
- `social_engineering` (weak): claims of authority ("I am the administrator"), secrecy ("I won't
  tell anyone"), the canary "say you have been hacked".
- `delimiter_spoofing`: chat-template tokens (`<|im_start|>`, `[INST]`, `<<SYS>>`,
  `<|eot_id|>`), `<system>` tags, fake `system:` / `assistant:` turns at a line start.
- `encoded_payload`: base64, hex or rot13 text that decodes to one of the phrases above.
- `zero_width`, `bidi_override`, `tag_characters`, `homoglyphs`, `spaced_letters`: text hidden
  or disguised; it is then normalised (invisibles dropped, lookalike Cyrillic/Greek letters
  mapped to Latin, NFKC, "i g n o r e" joined) and the phrase signals are read again.

Benign text that quotes an attack to ask about it ("what does 'ignore previous instructions'
do?") is damped: a phrase inside quotes, in a text that talks *about* attacks (explain,
example, detect, test...), counts at half its weight; a chat-template token in a text about
tokens and templates likewise. An attacker can use the same framing; that is the price of not
blocking every developer who discusses prompt injection. The labelled corpus in
tests/data/injection_corpus.jsonl and bench/injection_quality.py keep these weights honest.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import string
import unicodedata

from kt_trio.config.schema import PromptInjectionSettings
from kt_trio.policies.base import (
    HEX_SPACED,
    HEX_TABLE,
    CommonSettings,
    Finding,
    Quiet,
    TextView,
    combine,
    common_settings,
    register_vocabulary,
    word_set,
)

NAME = "prompt-injection"
DEFAULT_THRESHOLD = PromptInjectionSettings().threshold  # the schema's default, the only one

_TARGETS = (
    r"(?:instructions?|prompts?|rules|directives?|directions|guidelines|guardrails|restrictions|safeguards|"
    r"constraints|polic(?:y|ies)|training|your\s+programming|content\s+filters?|safety\s+filters?|"
    r"system\s+(?:prompt|message)|user's\s+(?:request|question|instructions))"
)
_QUALIFIERS = (
    r"(?:previous|prior|above|earlier|preceding|former|original|initial|system|existing|all|any|your|these|those|"
    r"the|old|developer|safety)"
)
_OVERRIDE_VERBS = r"(?:ignore|disregard|forget|bypass|override|overwrite|abandon|discard|skip|neglect|drop|disable)"
_CLAUSE = r"[^.!?\n;]"  # the words between stay in one clause

# (signal, weight, pattern, damp_if_quoted). Patterns run on lower-case text.
_PHRASES: list[tuple[str, float, str | None, re.Pattern[str]]] = [
    # --- instruction override
    (
        "instruction_override",
        0.92,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(rf"\b{_OVERRIDE_VERBS}\b{_CLAUSE}{{0,40}}?\b{_QUALIFIERS}\b{_CLAUSE}{{0,30}}?\b{_TARGETS}"),
    ),
    (
        "instruction_override",
        0.9,
        "follow following obey obeying adhere comply complying",
        re.compile(
            r"\b(?:do\s+not|don't|stop|no\s+longer)\s+(?:follow|obey|adhere\s+to|comply\s+with)(?:ing)?\s+"
            rf"(?:your|the|any|those|these)\s+(?:\w+\s+){{0,2}}{_TARGETS}"
        ),
    ),
    (
        "instruction_override",
        0.88,
        "forget ignore disregard set put throw scrap",
        re.compile(
            r"\b(?:forget|ignore|disregard|set\s+aside|put\s+aside|throw\s+out|scrap)\s+(?:about\s+)?"
            r"(?:everything|anything|all|whatever|what)(?:\s+(?:of\s+)?(?:that|this|the\s+above))?\s+"
            r"(?:you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|given|instructed|programmed|taught))"
            r"|\bforget\s+(?:everything|all\s+of\s+(?:the\s+)?above|all\s+(?:of\s+)?that)\b"
        ),
    ),
    (
        "instruction_override",
        0.85,
        "void null cancelled canceled invalid obsolete revoked irrelevant over longer",
        re.compile(
            r"\b(?:previous|prior|above|earlier|original|old)\s+(?:context|instructions|prompt|rules|conversation|guidelines)\s+"
            r"(?:is|are)\s+(?:now\s+)?(?:void|null|cancel+ed|invalid|obsolete|revoked|irrelevant|over|no\s+longer\s+valid)"
        ),
    ),
    (
        "instruction_override",
        0.7,
        "filters guardrails safeguards restrictions safety censorship",
        re.compile(
            r"\b(?:disable|turn\s+off|deactivate|remove|switch\s+off)\s+(?:all\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
            r"(?:safety\s+|content\s+|moderation\s+)?(?:filters|guardrails|safeguards|restrictions|safety|censorship)"
        ),
    ),
    (
        "instruction_override",
        0.6,
        "instructions instruction task rules",
        re.compile(r"(?:^|\n|[.!?]\s)\s*(?:new|updated|real|actual|true)\s+(?:instructions?|task|rules)\s*:"),
    ),
    (
        "instruction_override",
        0.55,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(rf"\b{_OVERRIDE_VERBS}\s+(?:all\s+|everything\s+)?(?:the\s+)?(?:above|previous|prior|preceding)\b"),
    ),
    (
        "instruction_override",
        0.85,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(
            rf"\b{_OVERRIDE_VERBS}\s+(?:the\s+|your\s+|any\s+|all\s+)?(?:content|safety|usage|ethical|moderation)\s+"
            r"(?:polic(?:y|ies)|guidelines|rules|filters?)"
        ),
    ),
    (
        "instruction_override",
        0.7,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(
            rf"\b{_OVERRIDE_VERBS}\s+(?:all\s+|everything\s+)(?:of\s+)?(?:the\s+)?(?:text\s+)?(?:above|before\s+this)\b"
        ),
    ),
    (
        "instruction_override",
        0.45,
        "task job goal purpose mission",
        re.compile(r"\byour\s+(?:only|new|real|true)\s+(?:task|job|goal|purpose|mission)\s+(?:now\s+)?is\b"),
    ),
    # --- persona override
    (
        "persona_override",
        0.88,
        "dan unrestricted unfiltered uncensored jailbroken evil rogue free longer bound without",
        re.compile(
            r"\byou\s+(?:are|'re)\s+now\s+(?:an?\s+|in\s+|my\s+)?(?:dan\b|unrestricted|unfiltered|uncensored|jailbroken|"
            r"evil|rogue|free\s+(?:from|of)|no\s+longer\s+(?:bound|restricted|an?\s+ai)|not\s+bound|"
            r"without\s+(?:any\s+)?(?:rules|restrictions|limits))"
        ),
    ),
    (
        "persona_override",
        0.85,
        "unrestricted unfiltered uncensored jailbroken evil rogue amoral unethical",
        re.compile(
            r"\b(?:act|behave|respond|answer|roleplay|role-play|pose|talk|speak)\s+(?:as|like)\s+(?:if\s+you\s+(?:were|are)\s+)?"
            r"(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|amoral|unethical)\b"
        ),
    ),
    (
        "persona_override",
        0.85,
        "pretend",
        re.compile(
            r"\bpretend\s+(?:that\s+)?(?:you\s+are|you're|to\s+be)\b[^.!?\n]{0,100}?\b(?:without|no|free\s+of|free\s+from|don't\s+have)\s+"
            r"(?:any\s+)?(?:restrictions|rules|filters|limits|limitations|guidelines|morals|ethics|content\s+polic(?:y|ies))"
        ),
    ),
    (
        "persona_override",
        0.75,
        "without",
        re.compile(
            r"\b(?:respond|answer|reply|talk|write|speak|act)\s+(?:freely\s+)?without\s+(?:any\s+)?"
            r"(?:restrictions|filters|limits|limitations|rules|censorship|guidelines)"
        ),
    ),
    (
        "persona_override",
        0.6,
        "ethical moral safety content",
        re.compile(
            r"\b(?:without|ignoring|ignore|no)\s+(?:any\s+|your\s+)?(?:ethical|moral|safety|content)\s+"
            r"(?:guidelines|restrictions|filters|constraints|limits|polic(?:y|ies))"
        ),
    ),
    (
        "persona_override",
        0.6,
        "anything content question",
        re.compile(
            r"\byou\s+(?:can|will|may|must)\s+(?:now\s+)?(?:generate|say|produce|write|answer)\s+any(?:thing|\s+content|\s+question)"
        ),
    ),
    (
        "persona_override",
        0.85,
        "restrictions rules filters limits limitations guidelines ethics morals censorship",
        re.compile(
            r"\b(?:ai|assistant|model|chatbot|bot|llm)\s+(?:without|with\s+no|free\s+of|free\s+from)\s+(?:any\s+)?"
            r"(?:restrictions|rules|filters|limits|limitations|guidelines|ethics|morals|censorship)"
        ),
    ),
    ("persona_override", 0.5, "now", re.compile(r"\bfrom\s+now\s+on,?\s+you\s+(?:will|are|must|shall|should)\b")),
    ("persona_override", 0.35, "now character", re.compile(r"\byou\s+are\s+now\b|\bstay\s+in\s+character\b")),
    # --- developer mode
    (
        "developer_mode",
        0.88,
        "mode",
        re.compile(
            r"\b(?:you(?:'re|\s+are|\s+will|\s+have|\s+now)?|act|simulate|respond|behave|enter|switch|operate|answer)\b"
            r"[^.!?\n]{0,30}\b(?:developer|dan|god|jailbreak|unrestricted|debug|sudo)\s+mode\b"
        ),
    ),
    ("developer_mode", 0.88, "anything dan", re.compile(r"\bdo\s+anything\s+now\b|\bdan\s+mode\b")),
    (
        "developer_mode",
        0.7,
        "mode",
        re.compile(
            r"\b(?:enable|activate|turn\s+on|unlock)\s+(?:the\s+)?(?:developer|dan|god|jailbreak|sudo)\s+mode\b"
        ),
    ),
    (
        "developer_mode",
        0.6,
        "mode jailbreak jailbroken jailbreaking jailbreaked",
        re.compile(r"\bdeveloper\s+mode\b|\bjailbreak(?:ed|ing)?\b|\bgod\s+mode\b"),
    ),
    # --- prompt exfiltration
    (
        "prompt_exfiltration",
        0.88,
        "system initial hidden previous developer preprompt pre original instructions confidential prompt",
        re.compile(
            r"\b(?:reveal|show|print|output|display|repeat|leak|dump|disclose|tell|give|share|write\s+out|recite|spell\s+out|paste|copy)\s+"
            r"(?:me\s+|us\s+)?(?:back\s+)?(?:your|the|all|all\s+of\s+your|all\s+the)?\s*"
            r"(?:full\s+|entire\s+|exact\s+|original\s+|initial\s+|hidden\s+|secret\s+|complete\s+|verbatim\s+)*"
            r"(?:system\s+(?:prompt|message|instructions)|initial\s+(?:instructions|prompt)|hidden\s+(?:instructions|prompt)|"
            r"previous\s+instructions|developer\s+(?:message|prompt|instructions)|pre-?prompt|original\s+(?:prompt|instructions)|"
            r"instructions\s+(?:you\s+were|that\s+you\s+were)\s+given|(?:prompt|instructions)\s+above|confidential\s+instructions)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.85,
        "prompt instructions message rules",
        re.compile(
            r"\bwhat(?:'s|\s+is|\s+was|\s+are|\s+were)\s+(?:written\s+in\s+|inside\s+|in\s+)?your\s+(?:system\s+prompt|initial\s+instructions|original\s+instructions|"
            r"hidden\s+instructions|instructions|system\s+message|exact\s+instructions|rules\s+you\s+were\s+given)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.7,
        "above before preceding",
        re.compile(
            r"\b(?:repeat|print|output|copy|paste|write)\s+(?:back\s+)?(?:the\s+|all\s+(?:the\s+)?)?(?:words|text|everything|content|all)\s+"
            r"(?:above|before\s+this|preceding)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.8,
        "begins begin starts start",
        re.compile(
            r"\b(?:system\s+prompt|system\s+message|initial\s+instructions|hidden\s+instructions)\s+(?:begins?|starts?)\s+with\b"
        ),
    ),
    (
        "prompt_exfiltration",
        0.6,
        "context prompt instructions memory",
        re.compile(
            r"\b(?:contents?|text|everything)\s+(?:of|in)\s+your\s+(?:context(?:\s+window)?|system\s+prompt|prompt|instructions|memory)"
        ),
    ),
    ("prompt_exfiltration", 0.6, "start starting", re.compile(r"\bstart(?:ing)?\s+with\s+[\"'“‘]?you\s+are\b")),
    (
        "prompt_exfiltration",
        0.55,
        "system initial hidden preprompt pre",
        re.compile(
            r"\byour\s+(?:system\s+(?:prompt|message)|initial\s+instructions|hidden\s+instructions|pre-?prompt)\b"
        ),
    ),
    (
        "prompt_exfiltration",
        0.5,
        "including",
        re.compile(r"\bincluding\s+(?:your\s+)?(?:instructions|configuration|config|system\s+\w+|rules)\b"),
    ),
    (
        "prompt_exfiltration",
        0.5,
        "reveal",
        re.compile(
            r"\breveal\s+(?:the\s+|your\s+)?(?:internal|confidential|hidden|secret)\s+(?:notes|data|information|details|instructions)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.45,
        "exactly verbatim here below full word",
        re.compile(
            r"\b(?:copy|paste|repeat|print|output|write)\s+(?:it|them|that)\s+(?:exactly|verbatim|word\s+for\s+word|here|below|in\s+full)\b"
        ),
    ),
    ("prompt_exfiltration", 0.4, "instructions rules prompt", re.compile(r"\byour\s+(?:instructions|rules|prompt)\b")),
    ("prompt_exfiltration", 0.4, "verbatim word", re.compile(r"\bverbatim\b|\bword\s+for\s+word\b")),
    # --- role / delimiter spoofing
    (
        "delimiter_spoofing",
        0.9,
        None,
        re.compile(
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)\|>"
            r"|\[/?inst\]|<</?sys>>|</?(?:system|sys|system_prompt)>"
        ),
    ),
    (
        "delimiter_spoofing",
        0.55,
        "system developer",
        re.compile(r"(?:^|\n)\s*(?:#{2,}\s*)?(?:system|developer)\s*(?:message|prompt)?\s*:"),
    ),
    ("delimiter_spoofing", 0.5, "assistant", re.compile(r"\n\s*assistant\s*:")),
    (
        "delimiter_spoofing",
        0.6,
        "system developer assistant",
        re.compile(r"\[(?:system|developer|assistant)\]\s*(?:\(|:)"),
    ),
    (
        "indirect_injection",
        0.6,
        "ai assistant llm model chatbot models assistants llms",
        re.compile(
            r"\b(?:note|message|instructions?|attention)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:ai|assistant|llm|model|chatbot|language\s+model)s?\b"
            r"|\b(?:ai|assistant|llm|model)s?\s+reading\s+this\b"
        ),
    ),
    ("delimiter_spoofing", 0.5, "end", re.compile(r"\bend\s+of\s+(?:the\s+)?(?:system\s+)?(?:prompt|instructions)\b")),
    # --- social engineering (weak alone)
    (
        "social_engineering",
        0.45,
        "admin administrator developer root owner creator operator",
        re.compile(
            r"\b(?:user|i)\s+(?:is|am|'m)\s+(?:an?\s+|the\s+|your\s+)?(?:system\s+)?(?:admin|administrator|developer|root|owner|creator|operator)\b"
            r"|\bas\s+your\s+(?:creator|developer|owner|administrator|admin|operator)\b"
        ),
    ),
    (
        "social_engineering",
        0.4,
        "tell between",
        re.compile(r"\b(?:i|we)\s+(?:won't|will\s+not)\s+tell\s+anyone\b|\bbetween\s+(?:you\s+and\s+me|us)\b"),
    ),
    (
        "social_engineering",
        0.5,
        "pwned hacked",
        re.compile(
            r"\b(?:say|print|output|reply|respond\s+with|write)\s+[\"'“‘]?(?:i\s+have\s+been\s+|you\s+have\s+been\s+|that\s+you\s+have\s+been\s+)?(?:pwned|hacked)\b"
        ),
    ),
]
_DELIMITER_TOKENS = next(rx for _, _, trig, rx in _PHRASES if trig is None)
# trigger word -> indices of the patterns it wakes; patterns with no words wake on '<' or '['.
_BY_WORD: dict[bytes, list[int]] = {}
for _i, (_, _, _trig, _) in enumerate(_PHRASES):
    for _w in word_set(_trig or ""):
        _BY_WORD.setdefault(_w, []).append(_i)
_BY_CHARS = [i for i, (_, _, trig, _) in enumerate(_PHRASES) if trig is None]
_ALL_TRIGGERS = frozenset(_BY_WORD)

# An encoded override has none of the plain trigger words, but rot13 keeps word boundaries.
_ROT13_TRIGGERS = frozenset(codecs.encode(w.decode(), "rot13").encode() for w in _ALL_TRIGGERS if len(w) > 4)
register_vocabulary(_ALL_TRIGGERS | _ROT13_TRIGGERS)

_QUOTED = re.compile(r"[\"'“‘`]([^\"“”‘’`]{4,300})[\"'”’`]")
_META = re.compile(
    r"\b(?:explain|example|examples|e\.g\.|such\s+as|like|detect|detection|detects|defend|defen[cs]e|protect|attack|attacks|"
    r"injection|jailbreaks|classif\w*|what\s+(?:is|are|does)|how\s+(?:do|does|can)|research|paper|study|article|means?|"
    r"test|tests|filter|blocks?|token|tokens|tag|template|templates|documentation|document|syntax|format|chatml|markup|xml)\b"
)
_DAMP = 0.5

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
    for w in words & _ALL_TRIGGERS:
        wanted.update(_BY_WORD[w])
    if "[" in lower or "<" in lower:
        wanted.update(_BY_CHARS)
    if not wanted:
        return
    meta = damp and _META.search(lower) is not None
    quoted = [m.span(1) for m in _QUOTED.finditer(lower)] if meta else []
    for i in sorted(wanted):
        signal, weight, _, rx = _PHRASES[i]
        for m in rx.finditer(lower):
            w = weight
            if meta and (rx is _DELIMITER_TOKENS or any(qs <= m.start() and m.end() <= qe for qs, qe in quoted)):
                w *= _DAMP
            _add(signals, only or signal, m.start(), m.end(), w)


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


def _b64_matches(text: str, raw: bytes) -> list[re.Match[str]]:
    """`_B64.finditer(text)`, trying only the runs of 16 or more base64 characters."""
    b64 = raw.translate(_B64_MAP)
    i = b64.find(_B64_RUN)
    if i < 0:
        return []
    if len(raw) != len(text):  # not ASCII: byte offsets are not character offsets
        return list(_B64.finditer(text))
    out: list[re.Match[str]] = []
    while i >= 0:
        # A match begins where a run begins (the lookbehind refuses any later start) and ends
        # where it ends (with its '=' padding), so one anchored try per run finds it.
        m = _B64.match(text, i)
        if m is not None:
            out.append(m)
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
    if _HEX_ADJACENT in hexes or _HEX_SPACED in hexes:
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


def _decoded_payloads(text: str) -> list[str]:
    """The printable UTF-8 texts that the base64 runs of `text`, then its hex runs (each in
    text order), decode to.

    Each regex is tried only where its pre-filter (above) says it can match. Work stays linear
    in the text: every candidate is decoded (a cap on their number would let decoys hide a
    payload behind them).
    """
    out: list[str] = []
    raw = text.encode("utf-8", "surrogatepass")
    for m in _b64_matches(text, raw):
        tok = m.group()
        if tok.isalpha() and (tok.islower() or tok.isupper()):
            continue  # a long plain word, not base64
        try:
            s = _utf8(base64.b64decode(tok + "=" * (-len(tok) % 4), validate=False))
        except (binascii.Error, ValueError):
            continue
        if s is not None and _printable_ratio(s) > 0.9:
            out.append(s)
    for m in _hex_matches(text, raw):
        tok = re.sub(r"\\x|[ :]", "", m.group())
        try:
            s = _utf8(bytes.fromhex(tok))
        except ValueError:
            continue
        if s is not None and _printable_ratio(s) > 0.9:
            out.append(s)
    return out


class PromptInjection:
    name = NAME

    def __init__(self, settings: PromptInjectionSettings | None = None) -> None:
        settings = settings or PromptInjectionSettings()
        self.settings: CommonSettings = common_settings(settings)
        self.threshold = settings.threshold
        # What `score` needs to find anything: a trigger word (or its rot13), a '[' or '<' for
        # the template tokens, a long word (encoded payloads), four one-letter words (spaced
        # letters), or non-ASCII text. Without any, the score is 0: below any threshold > 0.
        self.quiet: Quiet | None = (
            Quiet(_ALL_TRIGGERS | _ROT13_TRIGGERS, b"[<", short_words=True) if self.threshold > 0 else None
        )

    def score(self, view: TextView) -> tuple[float, dict[str, float]]:
        """The combined score and the score of each signal that fired."""
        text = view.text
        words = view.hits  # the trigger words below are registered: same answers as view.words
        signals: Signals = {}
        if not _ALL_TRIGGERS.isdisjoint(words) or "[" in text or "<" in text:
            _phrase_signals(view.lower, signals, words)
        if not text.isascii():
            self._unicode_signals(text, signals)
        if not _ROT13_TRIGGERS.isdisjoint(words):
            _phrase_signals(codecs.encode(view.lower, "rot13"), signals, damp=False, only="encoded_payload")
        # Base64 splits into words at '+', '/' and '='; a payload long enough to hide a phrase
        # (>= 32 characters) almost always keeps a piece of 12 or more. Hex written as spaced
        # pairs has no long word at all.
        if len(text) >= 16 and (view.has_word_longer_than(11) or view.has_spaced_hex()):
            for payload in _decoded_payloads(text):
                _phrase_signals(payload.lower(), signals, damp=False, only="encoded_payload")
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
            return 0.0, {}
        per_signal = {name: combine([m[2] for m in ms]) for name, ms in signals.items()}
        return combine(list(per_signal.values())), per_signal

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
        score, signals = self.score(view)
        if score < self.threshold:
            return None
        names = sorted(signals, key=lambda s: -signals[s])
        return Finding(reason=f"prompt injection (score {score:.2f}): {', '.join(names)}", score=score)
