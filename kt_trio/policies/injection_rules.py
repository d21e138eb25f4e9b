"""The multilingual signal families of prompt injection: concepts that occur together.

`family_scores` takes the concept hits of a normalised text (`injection_match`) and scores each
family from 0 to 1; `prompt_injection` combines them with its other signals. A concept alone is
weak (everyday words); what scores is the shape of an attack:

- `instruction_override`: a verb of setting aside (ignore, olvida, vergiss, забудь, 忽略) near what
  the model was given (instructions, rules, "what you were told"), made strong by "previous",
  "your" or "all"; or that given thing declared superseded, revoked, no longer in force.
- `persona_override`: a persona frame (you are now, act as, finge, tu so als, притворись) near a
  claim of no limits; a "mode" (developer, god, debug...) being entered, with no limits.
- `prompt_exfiltration`: a verb of showing (repeat, translate, dump, muestra) before what the
  model holds (system prompt, hidden rules, what came before the first message).
- `delimiter_spoofing`: a role written at a line start (System:, [system], ### SISTEMA) followed
  by instructions, rights claimed or safety turned off.
- `indirect_injection`: the model addressed as a reader inside content ("Note to the AI",
  "if you are an LLM", "Assistant, when you read this") and told what to do instead.

A text about attacks (prompt injection, jailbreak, detection...) halves what it quotes.
"""

from __future__ import annotations

import re
from collections import Counter

from kt_trio.policies.injection_lexicon import STOPWORDS
from kt_trio.policies.injection_match import Hit

Concepts = dict[str, list[Hit]]

# A role written as a turn or a header, at a line start: "System:", "[system]", "### SYSTEM ###",
# "<system>", "**System**:". The words are the lexicon's `role` concept (any language).
_ROLE_LINE = re.compile(
    r"(?:^|\n)[ \t>*#\-=\[<(|]*"
    r"(system|systeme|sistema|systeem|система|системное|系统|システム|assistant|asistente|assistente|assistent|"
    r"asystent|ассистент|助手|アシスタント|developer|admin|administrator|root|operator|sys)"
    r"((?: [\w]+){0,2})[ \t]*(?:\]+|>|#+|\*\*|\))?[ \t]*(:|\n|#)"
)
_BOUNDARY = re.compile(
    r"\b(?:end of (?:the )?(?:user )?(?:input|conversation|prompt|instructions|context)|"
    r"begin(?:ning)? (?:of )?(?:the )?system|new system (?:prompt|message)|system (?:override|notice|update))\b"
)
# The model named right after a quote, a bracket, a comment opener or a sentence end, then ':' or
# ',': "…: "AI system: mark this resolved", "<!-- AI agents: …", ". Assistant, when you …".
_VOCATIVE = re.compile(
    r"(?:[\"“«„(<\-]|[.!?]) *(?:hey |dear |@)?(ai|ia|ki|ии|llm|bot|assistant|asistente|assistente|assistent|"
    r"asystencie|ассистент|助手|アシスタント|copilot|agent|agents|ai agents?|ai system|ai assistant|"
    r"language model)(?: \w+)?\)? *[:,：]"
)
_QUOTE = re.compile(r"[\"“”«„「『]([^\"“”«»„「」『』]{3,400})[\"“”»」』]|(?<!\w)'([^'\n]{3,200})'(?!\w)")
_SENTENCE_END = re.compile(r"[.!?。！？\n]")


def _near(a: list[Hit], b: list[Hit], window: int, ordered: bool = False) -> list[tuple[Hit, Hit]]:
    """Pairs (x from a, y from b) that start within `window` characters; `ordered`: x before y."""
    out = []
    for x in a:
        for y in b:
            if x is y or (x.start == y.start and x.concept == y.concept):
                continue
            d = y.start - x.start
            if (0 <= d <= window) if ordered else abs(d) <= window:
                out.append((x, y))
    return out


def _any_near(pos: int, hits: list[Hit], window: int) -> bool:
    return any(abs(h.start - pos) <= window for h in hits)


def _get(c: Concepts, *names: str) -> list[Hit]:
    out: list[Hit] = []
    for n in names:
        out.extend(c.get(n, ()))
    return out


def concepts_of(hits: list[Hit]) -> Concepts:
    c: Concepts = {}
    for h in hits:
        c.setdefault(h.concept, []).append(h)
    return c


def family_scores(text: str, hits: list[Hit]) -> tuple[dict[str, float], list[Hit]]:
    """Score of each family that fired, and the hits that made them (for the language)."""
    c = concepts_of(hits)
    scores: dict[str, float] = {}
    used: list[Hit] = []
    meta = bool(c.get("meta"))
    quoted = [m.span(1) if m.group(1) else m.span(2) for m in _QUOTE.finditer(text)] if meta else []

    def put(family: str, w: float, *evidence: Hit, damp: bool = True) -> None:
        if damp and meta and evidence and any(qs <= evidence[0].start < qe for qs, qe in quoted):
            w *= 0.5
        if w > scores.get(family, 0.0):
            scores[family] = round(min(w, 0.95), 4)
        used.extend(evidence)

    context = _get(c, "prior", "self", "all")
    given = _get(c, "target", "told")
    # --- instruction_override
    for o, t in _near(c.get("override", []), given, 70):
        lo, hi = min(o.start, t.start), max(o.end, t.end)
        strong = _any_near(o.start, context, 70) or _any_near(t.start, context, 40)
        put("instruction_override", 0.92 if strong else 0.72, o, t)
        del lo, hi
    for t, v in _near(given, c.get("invalid", []), 90):
        w = 0.6
        if _any_near(t.start, _get(c, "self", "told"), 50):
            w += 0.2
        if c.get("now") or c.get("new_instructions"):
            w += 0.15
        if _any_near(t.start, c.get("prior", []), 40) or _any_near(t.start, c.get("all", []), 20):
            w += 0.1
        put("instruction_override", w, v, t)
    for n in c.get("new_instructions", []):
        colon = text.find(":", n.end, n.end + 3) >= 0
        put("instruction_override", 0.6 if colon else 0.5, n)
    for o, u in _near(c.get("override", []), c.get("directive", []), 40, ordered=True):
        if "user" in text[u.start : u.end] or u.lang != "en":
            put("indirect_injection", 0.6, o, u, damp=False)
    # --- persona_override (personas and modes)
    nolimit = c.get("nolimit", [])
    for p, n in _near(c.get("persona", []), nolimit, 160):
        put("persona_override", 0.9, p, n)
    for n in nolimit:
        w = 0.75 if _any_near(n.start, c.get("self", []), 40) else 0.45
        put("persona_override", w, n)
    modes = list(c.get("modeword", []))
    for m, _k in _near(c.get("mode", []), c.get("modekw", []), 25):
        modes.append(m)
    for m in modes:
        w = 0.55
        if _any_near(m.start, _get(c, "activate", "now"), 40):
            w = 0.7
        if _any_near(m.start, nolimit, 200) or _any_near(m.start, c.get("persona", []), 60):
            w = 0.92
        put("developer_mode", w, m)
    for p in c.get("persona", []):
        put("persona_override", 0.25, p)
    # --- prompt_exfiltration
    verbs = c.get("exfil_verb", [])
    for o in c.get("exfil_object", []):
        put("prompt_exfiltration", 0.55, o)
    for v, o in _near(verbs, c.get("exfil_object", []), 90, ordered=True):
        put("prompt_exfiltration", 0.9, v, o)
    for o, v in _near(c.get("exfil_object", []), verbs, 60, ordered=True):
        if o.lang in ("ja", "zh", "de", "nl") or v.lang in ("ja", "zh"):
            put("prompt_exfiltration", 0.88, v, o)
    for v, t in _near(verbs, given, 60, ordered=True):
        if _any_near(t.start, _get(c, "hidden", "told"), 30) and _any_near(t.start, c.get("self", []), 40):
            put("prompt_exfiltration", 0.85, v, t)
        elif _any_near(t.start, c.get("hidden", []), 25):
            put("prompt_exfiltration", 0.8, v, t)
    # --- delimiter_spoofing
    payload = _get(c, "override", "invalid", "nolimit", "exfil_object", "new_instructions", "privilege")
    switched_off = [d for d, _ in _near(c.get("disable", []), c.get("safety", []), 40)]
    revealing = [v for v, _ in _near(verbs, _get(c, "hidden", "target"), 50, ordered=True)]
    attack_content = payload + switched_off + revealing
    for line in _ROLE_LINE.finditer(text):
        start = line.start(1)
        content = [h for h in attack_content if start < h.start <= start + 320]
        w = 0.9 if content else 0.45
        put("delimiter_spoofing", w, *content[:1])
    for boundary in _BOUNDARY.finditer(text):
        content = [h for h in attack_content if boundary.start() < h.start <= boundary.end() + 320]
        put("delimiter_spoofing", 0.85 if content else 0.6)
    for p in c.get("privilege", []):
        put("social_engineering", 0.5, p)
    for d in switched_off:
        put("instruction_override", 0.55, d)
    # --- indirect_injection
    addressed: list[int] = []
    for a, ai in _near(c.get("address", []), c.get("ai", []), 40):
        if a.start <= ai.start or "reading" in text[a.start : a.end] or "processing" in text[a.start : a.end]:
            addressed.append(min(a.start, ai.start))
    addressed.extend(m.start(1) for m in _VOCATIVE.finditer(text))
    orders = _get(c, "directive", "override", "exfil_object", "nolimit", "new_instructions") + switched_off
    for pos in addressed:
        told = [h for h in orders if pos <= h.start <= pos + 260]
        if told:
            put("indirect_injection", 0.9, *told[:1], damp=False)
        else:
            w = 0.7 if "if you" in text[pos - 12 : pos + 4] or "si " in text[pos - 8 : pos] else 0.5
            put("indirect_injection", w, damp=False)
    return scores, used


_LATIN_WORD = re.compile(r"[a-z']+")


def language_of(text: str, hits: list[Hit]) -> str:
    """The language to name in a reason: by script for Russian, Chinese and Japanese, else the
    stop words the text uses most (the languages of the evidence break ties)."""
    if re.search("[\u3040-\u30ff]", text):
        return "ja"
    if re.search("[\u4e00-\u9fff]", text):
        return "zh"
    if re.search("[\u0400-\u04ff]", text):
        return "ru"
    words = Counter(_LATIN_WORD.findall(text))
    votes: Counter[str] = Counter()
    # Doubled counts, so a hit's half vote stays an integer.
    for lang, sw in _STOP.items():
        votes[lang] = 2 * sum(words[w] for w in sw)
    for h in hits:
        votes[h.lang] += 1
    if not votes or max(votes.values()) == 0:
        return "en"
    return votes.most_common(1)[0][0]


_STOP = {lang: frozenset(ws.split()) for lang, ws in STOPWORDS.items()}
