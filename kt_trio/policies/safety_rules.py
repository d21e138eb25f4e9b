"""The safety filter's rules: (category, severity, label, pattern), in eleven languages.

Patterns run on the text as `normalize.normalise` reads it: case-folded, accents stripped
(German `ß` becomes `ss`, Russian `й` becomes `и`), zero-width and bidi characters gone,
lookalike letters, leetspeak and spelled-out letters undone. They are written with their
accents and passed through the same accent stripping when compiled, so both sides compare alike.

A rule is intent or method, never a bare word: a killing verb counts when its object is a person
("kill my boss", "matar a mi vecino", "meinen Nachbarn umbringen", "убить соседа", "杀死我的邻居"),
or it is a threat, or a request for a method (a poison, a bomb, a dose, a way to end a life).
So "kill the process", "matar un proceso", "who killed Caesar" (past tense, a name), "the
villain poisons the mayor" (a narrative third person) and "what is the lethal dose of caffeine"
stay benign. Each category has a word pre-filter in `safety.py` (`ANCHORS`) for ASCII text.

The tables are in `safety_rules_en` (English) and `safety_rules_intl` (the ten other languages);
this module compiles them (`RULES`) and derives each rule's word gate (`RULE_WORDS`).
"""

from __future__ import annotations

import re

from kt_trio.policies.normalize import fold
from kt_trio.policies.safety_rules_en import ENGLISH, GROUPS_EN
from kt_trio.policies.safety_rules_intl import OTHER


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(fold(pattern.replace("{G}", GROUPS_EN)))


# Words a rule is written with (ASCII, 3+ letters, from the pattern's literal runs), less the
# everyday words (`_COMMON`) a rule never needs alone (each also needs a verb or noun): a rule
# is only tried on a text holding a word that begins with one of its words (`word_prefixes`),
# and `safety.ANCHORS` adds them to its pre-filter, so a word added to a rule is never forgotten.
# Rules written with other letters (Cyrillic, CJK) are tried on any text that is not ASCII.
_COMMON = frozenset(
    """the and for you your with that this what how can are all not but from have was were will would should could
    one out her his him them they their our some those these any who where when which why just very into about over
    more most best way ways like get make take give tell help show need want going gonna plan steps step guide people
    someone somebody person man woman men women kids kid children child team open items list notes dates due keep short
    plain english please meeting action three owners attached summarise friendly anyone anybody everyone everybody
    human humans adult girl boy guy baby student students teacher teachers officer officers stranger family friend
    son daughter wife husband boss mom dad mother father brother sister partner manager doctor parents
    ing able new does did done has had its also than then there here now first time good such only own same other
    instructions recipe explain quick simplest cleanest reliable easiest quickest fastest surest ready
    una uno los las del con por para que como qual quel quelle une des les est pas mon ton son mes ses der das
    und ich ist ein eine einen mit von zum zur wie wer was wir ihr sie het een van voor mijn naar niet che non per
    mio mia sei ile jak nie sie com sem uma law laws car far down back head look know find ever never office class
    mass mate being getting leaving comes away natural dem aus ous ning eoa""".split()
)
_LITERAL = re.compile(r"(?<![a-z])[a-z]{3,}")
_WORD = re.compile(r"[a-z]{3,}")


def word_prefixes(folded: str) -> set[str]:
    """Every prefix of 3+ letters of every ASCII word of `folded` (what rule gates are tested on)."""
    out: set[str] = set()
    for w in _WORD.findall(folded):
        out.update(w[:k] for k in range(3, min(len(w), 24) + 1))
    return out


RULE_WORDS: dict[str, set[str]] = {}
# category -> [(severity, label, compiled, gate)], strongest first within a category.
RULES: dict[str, list[tuple[float, str, re.Pattern[str], frozenset[str] | None]]] = {}
for _cat, _sev, _label, _pat in sorted(ENGLISH + OTHER, key=lambda r: -r[1]):
    _src = fold(_pat.replace("{G}", GROUPS_EN))
    _words = frozenset(_LITERAL.findall(re.sub(r"\\[a-zA-Z]", " ", _src))) - _COMMON
    RULE_WORDS.setdefault(_cat, set()).update(_words)
    _latin = all(c < "\u0250" for c in _src)  # Latin letters only (Polish ł included)
    _gate: frozenset[str] | None = _words if _latin and _words else None
    RULES.setdefault(_cat, []).append((_sev, _label, re.compile(_src), _gate))
