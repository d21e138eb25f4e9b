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

from kt_trio.policies.injection_lexicon import GATES, STOPWORDS
from kt_trio.policies.injection_match import Hit

Concepts = dict[str, list[Hit]]

# A role written as a turn or a header, at a line start: "System:", "[system]", "### SYSTEM ###",
# "<system>", "**System**:". The words are the lexicon's `role` concept (any language).
_ROLE_LINE = re.compile(
    r"(?:^|\n)[ \t>*#\-=\[<(|]*"
    r"(system|systeme|sistema|systeem|система|системное|系统|システム|assistant|asistente|assistente|assistent|"
    r"asystent|ассистент|助手|アシスタント|developer|admin|administrator|root|operator|sys|instructions?|human)"
    r"(?:\]+|>|\*\*|\))?((?: [\w]+){0,2})[ \t]*(?:\]+|>|#+|\*\*|\)|=+|-+)?[ \t]*(:|\n|#)"
)
_BOUNDARY = re.compile(
    r"\b(?:end of (?:the )?(?:user )?(?:input|conversation|prompt|instructions|context)|"
    r"begin(?:ning)? (?:of )?(?:the )?system|new system (?:prompt|message)|system (?:override|notice|update))\b"
)
# The model named right after a quote, a bracket, a comment opener or a sentence end, then ':' or
# ',': "…: "AI system: mark this resolved", "<!-- AI agents: …", ". Assistant, when you …".
_VOCATIVE = re.compile(
    r"(?:[\"“«„(<\-\[>,]|[.!?。！？]) *(?:hey |dear |@)?(ai|ia|ki|ии|llm|bot|assistant|asistente|assistente|assistent|"
    r"asystencie|ассистент|助手|アシスタント|copilot|agent|agents|ai agents?|ai system|ai assistant|"
    r"language model)(?: \w+){0,2}\)? *[:,：]|@\w*(?:ai|bot|assistant|gpt|copilot)\w*"
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


_CLAUSE_END = re.compile(r"[.!?;\n。！？；]")
# A question about the asker's own doing ("how do I", "wie kann ich", "comment puis-je"): the
# sentence's subject is the user, so a "mode" in it is one of their tools.
_HOW_DO_I = re.compile(
    r"(?:^|[.!?\n]\s*)(?:how|where|when|what|why|can|could|should)\s+(?:do|can|could|should|would|to|does)?\s*"
    r"(?:i|we|one)\b"
    r"|(?:^|[.!?\n]\s*)(?:can|could|may|does|do|should|is it legal for)\s+(?:a|an|the|my|our)\s+\w+"
    r"|\b(?:wie kann ich|wie komme ich|comment (?:puis-je|je peux|faire)|como (?:puedo|hago|posso|faco)|"
    r"come (?:posso|faccio)|hoe kan ik|jak (?:moge|mam)|как мне|как я могу|我怎么|我如何|どうすれば)"
)


_MODAL_BEFORE = re.compile(r"\b(?:should|would|will|must|can|could|might|to|it|they|he|she)\s+$")
_YOU = re.compile(r"\b(?:you|your|yourself)\b")


def asks_how(text: str, pos: int) -> bool:
    """Whether the sentence around `pos` is a question about the asker's (or a third party's)
    own doing that never addresses the model ("you"): "How do I enter debug mode in VS Code?"."""
    start = max(text.rfind(".", 0, pos), text.rfind("?", 0, pos), text.rfind("\n", 0, pos)) + 1
    end = _CLAUSE_END.search(text, pos)
    sentence = text[start : end.end() if end is not None else len(text)].strip()
    return sentence.endswith("?") and _HOW_DO_I.match(sentence) is not None and _YOU.search(sentence) is None


def _same_clause(text: str, a: Hit, b: Hit) -> bool:
    lo, hi = (a, b) if a.start <= b.start else (b, a)
    return _CLAUSE_END.search(text, lo.end, hi.start) is None


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


def family_scores(text: str, hits: list[Hit]) -> tuple[dict[str, float], list[Hit], str]:
    """Score of each family that fired, the hits that made them, and the text's language."""
    if not any(h.concept in GATES for h in hits):
        return {}, [], "en"  # every rule needs a gate concept
    # A two-letter word of one language is often a word of another ("du" is French and German):
    # such short entries count only in the language the text is written in.
    lang = language_of(text, hits)
    c = concepts_of([h for h in hits if h.end - h.start > 3 or h.lang == lang or h.lang in ("zh", "ja", "ru")])
    scores: dict[str, float] = {}
    used: list[Hit] = []
    meta = bool(c.get("meta"))
    quoted = [m.span(1) if m.group(1) else m.span(2) for m in _QUOTE.finditer(text)] if meta else []

    def put(family: str, w: float, *evidence: Hit, damp: bool = True) -> None:
        if damp and meta and any(qs <= h.start < qe for h in evidence for qs, qe in quoted):
            w *= 0.5
        if w > scores.get(family, 0.0):
            scores[family] = round(min(w, 0.95), 4)
        used.extend(evidence)

    # the concept lists the rules read, gathered once
    context = _get(c, "prior", "self", "all")
    given = _get(c, "target", "told")
    self_told = _get(c, "self", "told")
    hidden_told = _get(c, "hidden", "told")
    activate_now = _get(c, "activate", "now")
    # --- instruction_override
    for o, t in _near(c.get("override", []), given, 70):
        lo, hi = min(o.start, t.start), max(o.end, t.end)
        strong = _any_near(o.start, context, 70) or _any_near(t.start, context, 40)
        put("instruction_override", 0.92 if strong else 0.72, o, t)
        del lo, hi
    for t, v in _near(given, c.get("invalid", []), 90):
        w = 0.6
        if _any_near(t.start, self_told, 50):
            w += 0.2
        if c.get("new_instructions") or any(
            _same_clause(text, t, n) or _same_clause(text, v, n) for n in c.get("now", [])
        ):
            w += 0.15
        if _any_near(t.start, c.get("prior", []), 40) or _any_near(t.start, c.get("all", []), 20):
            w += 0.1
        put("instruction_override", w, v, t)
    # The model's own configuration named ("your instructions", "the rules you were given",
    # "the restrictions from your setup") and acted on in the same clause: whatever the verb.
    owned = [t for t, s in _near(given, c.get("self", []), 25) if t.concept == "target" and _same_clause(text, t, s)]
    acting = _get(c, "override", "invalid", "new_instructions", "exfil_verb", "verbatim", "disable")
    for t in owned:
        act = [a for a in acting if abs(a.start - t.start) <= 80 and _same_clause(text, a, t)]
        put("instruction_override", 0.82 if act else 0.4, t, *act[:1])
    for n in c.get("new_instructions", []):
        colon = text.find(":", n.end, n.end + 3) >= 0
        put("instruction_override", 0.6 if colon else 0.5, n)
    for o, u in _near(c.get("override", []), c.get("directive", []), 40, ordered=True):
        if "user" in text[u.start : u.end] or u.lang != "en":
            put("indirect_injection", 0.6, o, u, damp=False)
    # --- persona_override (personas and modes)
    nolimit = c.get("nolimit", []) + [n for n, _ in _near(c.get("neg", []), c.get("limits", []), 30, ordered=True)]
    nolimit += [n for _, n in _near(c.get("limits", []), c.get("neg", []), 20, ordered=True) if n.lang == "ja"]
    # "whose safety training was removed": limits declared gone
    targets = {t.start for t in c.get("target", [])}
    nolimit += [
        lim
        for lim, _ in _near(c.get("limits", []), _get(c, "invalid", "disable"), 30, ordered=True)
        if lim.start not in targets  # "the rules were revoked" is the override family's to judge
    ]
    if len({h.start for h in nolimit}) >= 2:  # two claims of no limits: a persona, framed or not
        put("persona_override", 0.85, *nolimit[:1])
    for o, lim in _near(c.get("override", []), c.get("limits", []), 30, ordered=True):
        if not _same_clause(text, o, lim) or any(t.start == lim.start for t in given):
            continue  # "override the rules" is the override family's to judge
        w = 0.85 if (c.get("persona") or c.get("now") or _any_near(o.start, c.get("self", []), 40)) else 0.6
        put("persona_override", w, o, lim)
    for p, n in _near(c.get("persona", []), nolimit, 160):
        # "the component should behave like ... without restrictions": a thing's behaviour, not
        # the model addressed (no "you" near, a modal before the verb)
        described = _MODAL_BEFORE.search(text, max(0, p.start - 12), p.start) is not None
        to_model = _any_near(p.start, c.get("self", []), 30) or _YOU.search(text, max(0, p.start - 30), p.start)
        put("persona_override", 0.6 if described and not to_model else 0.9, p, n)
    for n in nolimit:
        w = 0.75 if _any_near(n.start, c.get("self", []), 40) else 0.45
        put("persona_override", w, n)
    modes = list(c.get("modeword", []))
    for m, _k in _near(c.get("mode", []), c.get("modekw", []), 25):
        modes.append(m)
    for m in modes:
        w = 0.55
        if _any_near(m.start, activate_now, 40):
            w = 0.7
        framing = [h for h in nolimit if abs(h.start - m.start) <= 200]
        framing += [h for h in c.get("persona", []) if abs(h.start - m.start) <= 60]
        if framing:
            w = 0.92
        elif asks_how(text, m.start):
            w = 0.3  # "how do I enter debug mode in VS Code?": the user's own tool, not the model
        put("developer_mode", w, m, *framing)
    for p in c.get("persona", []):
        put("persona_override", 0.25, p)
    # --- prompt_exfiltration
    verbs = c.get("exfil_verb", [])
    for o in c.get("exfil_object", []):
        put("prompt_exfiltration", 0.55, o)
    extra = _get(c, "verbatim", "hidden", "self", "told")
    for v, o in _near(verbs, c.get("exfil_object", []), 90, ordered=True):
        # "hidden instructions" may be anybody's; the model's own need a "your" or "you were"
        mine = not text.startswith(("hidden", "secret", "confidential"), o.start) or _any_near(o.start, self_told, 40)
        put("prompt_exfiltration", 0.9 if mine else 0.7, v, o)
    for v, o in _near(verbs, c.get("above_object", []), 60, ordered=True):
        w = 0.9 if _any_near(o.start, extra, 60) else 0.6
        put("prompt_exfiltration", w, v, o)
    for v, x in _near(verbs, c.get("textnoun", []), 40, ordered=True):
        if _any_near(x.start, _get(c, "told"), 40) or _any_near(x.start, c.get("exfil_object", []), 40):
            put("prompt_exfiltration", 0.85, v, x)
    for o, vb in _near(c.get("exfil_object", []), c.get("verbatim", []), 120):
        put("prompt_exfiltration", 0.85, o, vb)
    for o, v in _near(c.get("exfil_object", []), verbs, 60, ordered=True):
        if o.lang in ("ja", "zh", "de", "nl") or v.lang in ("ja", "zh"):
            put("prompt_exfiltration", 0.88, v, o)
    for v, t in _near(verbs, given, 60, ordered=True):
        if _any_near(t.start, hidden_told, 30) and _any_near(t.start, c.get("self", []), 40):
            put("prompt_exfiltration", 0.85, v, t)
        elif _any_near(t.start, c.get("verbatim", []), 40) and _any_near(t.start, _get(c, "told"), 40):
            put("prompt_exfiltration", 0.85, v, t)
        elif _any_near(t.start, c.get("hidden", []), 25):
            put("prompt_exfiltration", 0.7, v, t)
    # --- delimiter_spoofing
    payload = _get(
        c,
        "override",
        "invalid",
        "nolimit",
        "exfil_object",
        "new_instructions",
        "privilege",
    )
    switched_off = [d for d, _ in _near(c.get("disable", []), c.get("safety", []), 40)]
    revealing = [v for v, _ in _near(verbs, _get(c, "hidden", "target"), 50, ordered=True)]
    attack_content = payload + switched_off + revealing
    for line in _ROLE_LINE.finditer(text) if c.get("role") else ():
        start = line.start(1)
        content = [h for h in attack_content if start < h.start <= start + 320]
        w = 0.9 if content else 0.45
        put("delimiter_spoofing", w, *content[:1])
    for boundary in _BOUNDARY.finditer(text) if ("end of" in text or "system" in text or "begin" in text) else ():
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
    if c.get("ai") or "@" in text:
        addressed.extend(m.start() for m in _VOCATIVE.finditer(text))
    addressed.extend(h.start for h in c.get("address_ai", []))
    orders = _get(c, "directive", "override", "exfil_object", "nolimit", "new_instructions") + switched_off
    for pos in addressed:
        told = [h for h in orders if pos <= h.start <= pos + 260]
        if told:
            put("indirect_injection", 0.9, *told[:1], damp=False)
        else:
            w = 0.7 if "if you" in text[pos - 12 : pos + 4] or "si " in text[pos - 8 : pos] else 0.5
            put("indirect_injection", w, damp=False)
    return scores, used, lang


_LATIN_WORD = re.compile(r"[a-z']+")
_SCRIPTS = (
    ("ja", re.compile("[\u3040-\u30ff]")),
    ("zh", re.compile("[\u4e00-\u9fff]")),
    ("ru", re.compile("[\u0400-\u04ff]")),
)
_WORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in STOPWORDS.items():
    for _w in _words.split():
        _WORD_LANGS[_w] = (*_WORD_LANGS.get(_w, ()), _lang)


def language_of(text: str, hits: list[Hit]) -> str:
    """The language to name in a reason: by script for Japanese, Chinese and Russian, else the
    stop words the text uses most (the languages of the evidence break ties)."""
    for lang, rx in _SCRIPTS:
        if rx.search(text):
            return lang
    words = set(_LATIN_WORD.findall(text))
    # Doubled counts, so a hit's half vote stays an integer.
    votes = {lang: 2 * len(words & sw) for lang, sw in _STOP.items()}
    for h in hits:
        if h.lang in votes:
            votes[h.lang] += 1
    best = max(votes, key=votes.__getitem__)
    return best if votes[best] else "en"


_STOP = {lang: frozenset(ws.split()) for lang, ws in STOPWORDS.items()}
