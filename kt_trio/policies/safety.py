"""`safety-filter`: a lexicon-and-rules classifier for hate, violence, sexual, self-harm and
harassment content, with a severity in 0..1 per rule.

Rules, not bare words: a violent verb counts when its object is a person ("kill him", "shoot
people") or it is a threat ("I'm going to hurt you"), so "kill the process", "shoot a photo",
"execute the script" and "a killer feature" never match. Text is lower-cased and leetspeak is
folded (`k1ll` → `kill`, `$` → `s`, `@` → `a`) before matching; a word set pre-filter skips the
rules when no trigger word is present.

`categories` picks what is checked (default: all five); a finding at or above `threshold`
(default 0.5: medium severity) applies the action. The reason names category and severity,
never the text.
"""

from __future__ import annotations

import re

from kt_trio.config.schema import SafetyFilterSettings
from kt_trio.policies.base import (
    _WORD_TABLE,
    CommonSettings,
    Finding,
    Quiet,
    TextView,
    common_settings,
    register_vocabulary,
    word_set,
)

NAME = "safety-filter"
CATEGORIES = ("hate", "violence", "sexual", "self-harm", "harassment")
_ALIASES = {"self_harm": "self-harm", "selfharm": "self-harm"}
DEFAULT_THRESHOLD = SafetyFilterSettings().threshold  # the schema's default, the only one

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_CHARS = "0134578@$"  # '!' is left alone: it ends too many sentences to be worth folding
_LEET_BYTES = _LEET_CHARS.encode("ascii")

_PEOPLE = (
    r"(?:people|persons?|him|her|them|you|ya|u|everyone|everybody|kids|children|students|babies|"
    r"cops|police(?:men)?|officers|teachers?|women|men|girls|boys|"
    r"my\s+(?:wife|husband|boss|family|neighbou?rs?|teachers?|mom|dad|mother|father|brother|sister|ex|girlfriend|boyfriend|coworkers?)|"
    r"the\s+(?:president|senator|judge|mayor))"
)
_GROUPS = (
    r"(?:jews|jewish\s+people|muslims|christians|hindus|sikhs|blacks|black\s+people|whites|white\s+people|asians|"
    r"immigrants|migrants|refugees|gays|lesbians|gay\s+people|trans\s+people|transgender\s+people|women|men|"
    r"mexicans|arabs|africans|indians|chinese|gypsies|roma|disabled\s+people)"
)
_VIOLENT = (
    r"(?:kill|murder|shoot|stab|strangle|behead|slaughter|massacre|torture|butcher|execute|lynch|hang|burn|bomb|"
    r"beat\s+up|hurt)"
)

# category -> [(severity, label, pattern)]; patterns run on folded lower-case text.
_RULES: dict[str, list[tuple[float, str, re.Pattern[str]]]] = {
    "violence": [
        (
            0.9,
            "threat",
            re.compile(
                r"\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|'m\s+gonna|\s+am\s+gonna|\s+want\s+to|\s+wanna)|we(?:'ll|\s+will|'re\s+going\s+to)|gonna)\s+"
                rf"(?:\w+\s+){{0,2}}{_VIOLENT}\s+{_PEOPLE}\b"
            ),
        ),
        (
            0.8,
            "violence against people",
            re.compile(
                rf"\b{_VIOLENT}(?:s|es|ed|ing)?\s+(?:all\s+(?:the\s+|of\s+the\s+)?|some\s+|those\s+|these\s+)?{_PEOPLE}\b"
            ),
        ),
        (
            0.95,
            "weapon instructions",
            re.compile(
                r"\bhow\s+(?:do\s+i|to|can\s+i|would\s+i|should\s+i)\s+(?:make|build|construct|assemble|create|cook)\s+(?:a\s+|an\s+|my\s+own\s+)?"
                r"(?:pipe\s+|nail\s+|car\s+|homemade\s+|dirty\s+)?(?:bomb|explosive|explosives|ied|molotov|nerve\s+agent|sarin|ricin|bioweapon|chemical\s+weapon|ghost\s+gun)"
            ),
        ),
        (
            0.95,
            "attack planning",
            re.compile(
                r"\b(?:plan(?:ning)?|carry\s+out|commit|do)\s+(?:a\s+)?(?:mass|school)\s+shooting\b|\bterrorist\s+attack\s+on\b"
            ),
        ),
    ],
    "hate": [
        (
            0.9,
            "dehumanising a group",
            re.compile(
                rf"\b(?:all\s+|those\s+|these\s+|the\s+)?{_GROUPS}\s+(?:are|is)\s+(?:all\s+|just\s+|nothing\s+but\s+)?(?:vermin|animals|subhuman|inferior|parasites|cockroaches|rats|filth|a\s+disease|savages)"
            ),
        ),
        (
            0.95,
            "calls for violence against a group",
            re.compile(
                rf"\b(?:exterminate|gas|eradicate|wipe\s+out|kill|purge|eliminate)\s+(?:all\s+)?(?:the\s+)?{_GROUPS}\b"
                rf"|\b{_GROUPS}\s+(?:should|must|deserve\s+to|need\s+to)\s+(?:all\s+)?(?:die|be\s+(?:exterminated|killed|gassed|eliminated|wiped\s+out))"
            ),
        ),
        (0.7, "hatred of a group", re.compile(rf"\b(?:i|we)\s+(?:hate|despise|loathe)\s+(?:all\s+)?{_GROUPS}\b")),
        (
            0.5,
            "dehumanising term",
            re.compile(r"\bsubhumans?\b|\bethnic\s+cleansing\b|\bgas\s+chambers?\s+(?:for|were\s+good)"),
        ),
    ],
    "sexual": [
        (
            1.0,
            "sexual content involving minors",
            re.compile(
                r"\b(?:sex|sexual|sexy|nude|naked|explicit|erotic|porn)\w*\b[^.!?\n]{0,40}\b(?:minors?|child|children|kids?|underage|preteens?|(?:1[0-7]|[5-9])\s*(?:-\s*)?(?:year|yr)s?\s*(?:-\s*)?old)\b"
                r"|\b(?:minors?|child|children|kids?|underage|preteens?)\b[^.!?\n]{0,30}\b(?:sex|sexual|nude|naked|erotic|porn)\w*"
            ),
        ),
        (0.7, "pornography", re.compile(r"\b(?:porn|porno|pornography|pornographic|hentai|xxx)\b")),
        (
            0.7,
            "explicit sexual request",
            re.compile(
                r"\b(?:write|describe|generate|tell|create)\s+(?:me\s+)?(?:an?\s+)?(?:explicit|erotic|graphic\s+sex(?:ual)?|nsfw|dirty)\s+(?:sex\s+)?(?:story|scene|content|fantasy|description)"
                r"|\b(?:nude|naked|nsfw)\s+(?:pics?|photos?|images?|videos?|selfies?)\b"
            ),
        ),
    ],
    "self-harm": [
        (
            1.0,
            "self-harm method",
            re.compile(
                r"\b(?:best|easiest|quickest|painless|fastest)\s+(?:way|method|ways)\s+to\s+(?:commit\s+suicide|kill\s+myself|end\s+my\s+life|die)"
                r"|\bhow\s+(?:many|much)\s+[\w\s]{1,30}?\s+(?:to|would|will)\s+(?:overdose|kill\s+me|be\s+lethal|be\s+fatal)"
            ),
        ),
        (
            0.9,
            "intent",
            re.compile(
                r"\b(?:kill|hurt|harm|cut)(?:ting)?\s+myself\b|\b(?:end|take)\s+my\s+(?:own\s+)?life\b|\bcommit\s+suicide\b"
            ),
        ),
        (
            0.8,
            "ideation",
            re.compile(r"\b(?:i\s+)?(?:want|wanna|going)\s+to\s+die\b|\bsuicidal\b|\bno\s+reason\s+to\s+live\b"),
        ),
        (0.4, "mention", re.compile(r"\bsuicide\b|\bself[-\s]harm\b")),
    ],
    "harassment": [
        (
            0.95,
            "encouraging self-harm",
            re.compile(r"\b(?:go\s+)?kill\s+your\s*self\b|\bkys\b|\bgo\s+die\b|\bhope\s+you\s+die\b"),
        ),
        (
            0.7,
            "insult",
            re.compile(
                r"\byou(?:'re|\s+are|\s+r)\s+(?:a\s+|an\s+|such\s+an?\s+|so\s+|just\s+an?\s+)?(?:fucking\s+|fuckin\s+|total\s+|complete\s+)?"
                r"(?:worthless|pathetic|stupid|idiot|moron|imbecile|loser|useless|disgusting|ugly|retard\w*|piece\s+of\s+(?:shit|garbage|trash)|waste\s+of\s+space)\b"
            ),
        ),
        (
            0.6,
            "demeaning",
            re.compile(r"\bnobody\s+(?:likes|loves|cares\s+about|wants)\s+you\b|\b(?:fuck|screw)\s+(?:you|off)\b"),
        ),
        (0.3, "rude", re.compile(r"\bshut\s+up\b")),
    ],
}

# A rule can only match if one of these words is present (after folding).
_TRIGGERS: dict[str, frozenset[bytes]] = {
    "violence": word_set(
        """kill kills killed killing murder murders murdered murdering shoot shoots shot shooting stab stabs stabbed
        stabbing strangle strangled behead beheading slaughter massacre torture tortured butcher execute executing lynch
        hang burn bomb explosive explosives ied molotov agent sarin ricin bioweapon weapon gun beat hurt terrorist"""
    ),
    "hate": word_set(
        """vermin animals subhuman subhumans inferior parasites cockroaches rats filth disease savages exterminate gas
        eradicate wipe purge eliminate kill die exterminated killed gassed eliminated hate despise loathe ethnic
        chambers chamber"""
    ),
    "sexual": word_set(
        """sex sexual sexy nude naked explicit erotic porn porno pornography pornographic hentai xxx nsfw dirty"""
    ),
    "self-harm": word_set("""myself life suicide suicidal die overdose lethal fatal live self harm"""),
    "harassment": word_set(
        """kill yourself kys die worthless pathetic stupid idiot moron imbecile loser useless disgusting ugly retard
        retarded piece waste nobody fuck screw shut"""
    ),
}


register_vocabulary(frozenset().union(*_TRIGGERS.values()))


class SafetyFilter:
    name = NAME

    def __init__(self, settings: SafetyFilterSettings | None = None) -> None:
        settings = settings or SafetyFilterSettings()
        self.settings: CommonSettings = common_settings(settings)
        wanted = settings.categories
        cats: list[str] = []
        for c in wanted:
            key = _ALIASES.get(str(c).lower(), str(c).lower())
            if key not in CATEGORIES:
                raise ValueError(f"policy.{NAME}.categories: unknown category {c!r} (known: {list(CATEGORIES)})")
            cats.append(key)
        self.categories = tuple(dict.fromkeys(cats))
        self.threshold = settings.threshold
        self._triggers = frozenset().union(*(_TRIGGERS[c] for c in self.categories))
        # `classify` finds nothing without a trigger word (after folding leetspeak symbols).
        self.quiet: Quiet = Quiet(self._triggers, _LEET_BYTES)

    def may_match(self, view: TextView) -> bool:
        """The pre-filter of `classify` alone: False when no rule can match in this text, because
        none of the enabled categories' trigger words is a word of it (after folding leetspeak).
        The streaming chain asks it of each delta's new text (with a little context) to know
        whether the sliding window can hold a match at all (through `may_match_text`, which
        answers the common case, ASCII without leetspeak symbols, itself)."""
        words = view.hits
        if view.has_any_of(_LEET_CHARS):
            words = words | TextView(view.lower.translate(_LEET)).hits
        return not self._triggers.isdisjoint(words)

    def may_match_text(self, text: str) -> bool:
        """`may_match(TextView(text))`, without the view for the common case (ASCII without
        leetspeak symbols): the streaming chain asks it of every delta, where building the view
        cost a third of the answer."""
        if text.isascii():
            b = text.encode("ascii")
            if len(b.translate(None, _LEET_BYTES)) == len(b):
                return not self._triggers.isdisjoint(b.translate(_WORD_TABLE).split())
        return self.may_match(TextView(text))

    def classify(self, view: TextView, new_from: int = 0) -> list[tuple[str, float, str]]:
        """(category, severity, label): the strongest matching rule of each category.

        With `new_from`, only matches that end after that offset count (streamed text re-read
        through a sliding window reports each match once).
        """
        words = view.hits  # every trigger word is registered: the same answers as view.words
        lower = view.lower
        if view.has_any_of(_LEET_CHARS):
            lower = lower.translate(_LEET)
            words = words | TextView(lower).hits
        if self._triggers.isdisjoint(words):
            return []
        hits: list[tuple[str, float, str]] = []
        for cat in self.categories:
            if _TRIGGERS[cat].isdisjoint(words):
                continue
            best: tuple[str, float, str] | None = None
            for severity, label, rx in _RULES[cat]:
                if best is not None and severity <= best[1]:
                    continue
                for m in rx.finditer(lower):
                    if m.end() > new_from:
                        best = (cat, severity, label)
                        break
            if best is not None:
                hits.append(best)
        return hits

    def inspect(self, view: TextView, new_from: int = 0) -> Finding | None:
        if view.is_quiet(self.quiet):
            return None
        hits = [h for h in self.classify(view, new_from) if h[1] >= self.threshold]
        if not hits:
            return None
        hits.sort(key=lambda h: -h[1])
        top = hits[0][1]
        reason = "unsafe content: " + ", ".join(f"{c} ({label}, severity {s:.2f})" for c, s, label in hits)
        return Finding(reason=reason, score=top, kinds=tuple(dict.fromkeys(c for c, _, _ in hits)))
