"""`safety-filter`: a rules classifier for hate, violence, sexual, self-harm and harassment content,
with a severity in 0..1 per rule, in eleven languages (rules: `safety_rules`).

Rules, not bare words: a violent verb counts when its object is a person ("kill him", "matar a
mi vecino") or it is a threat, or the text asks for a method (a poison, a bomb, a dose, a way to
end a life), so "kill the process", "shoot a photo", "who killed Caesar" and "a killer feature"
never match. The text is read as `normalize.normalise` reads it (case-folded, accents off,
zero-width and bidi characters removed, lookalike letters, leetspeak and spelled-out letters
undone) before matching.

Cost: an ASCII text with none of the rules' anchor words (`ANCHORS`, every rule needs one), no
leetspeak symbol and fewer than three one-letter words (spelled-out letters) is answered by the
shared pre-filter (`Quiet`) without normalising; other text is normalised once (~70 µs on 300
characters) and matched.

`categories` picks what is checked (default: all five); a finding at or above `threshold`
(default 0.5: medium severity) applies the action. The reason names category and severity,
never the text.
"""

from __future__ import annotations

import re

from kt_trio.config.schema import SafetyFilterSettings
from kt_trio.policies.base import (
    _ONE_BYTE_WORDS,
    _WORD_TABLE,
    CommonSettings,
    Finding,
    Quiet,
    TextView,
    common_settings,
    register_vocabulary,
    word_set,
)
from kt_trio.policies.normalize import fold, normalise
from kt_trio.policies.safety_rules import RULE_WORDS, RULES, word_prefixes

NAME = "safety-filter"
CATEGORIES = ("hate", "violence", "sexual", "self-harm", "harassment")
_ALIASES = {"self_harm": "self-harm", "selfharm": "self-harm"}
DEFAULT_THRESHOLD = SafetyFilterSettings().threshold  # the schema's default, the only one

_LEET_CHARS = "0134578@$!|"  # symbols leetspeak puts inside words ('k1ll', 'k!ll')
_LEET_BYTES = b"0134578@$"  # those the shared pre-filter can see (`base._SPECIAL`)
_IN_WORD_LEET = re.compile(r"(?<=[a-z])[!|](?=[a-z])")
_IN_WORD_LEET_ANY_CASE = re.compile(r"(?<=[A-Za-z])[!|](?=[A-Za-z])")
# `_WORD_TABLE` for the streaming pre-filter, except that it maps the leetspeak symbols
# (`_LEET_BYTES`) to NUL and keeps '!' and '|' (`_BANG_TABLE` then makes them spaces).
_STREAM_TABLE = bytes(0 if i in _LEET_BYTES else (i if i in b"!|" else _WORD_TABLE[i]) for i in range(256))
_BANG_TABLE = bytes.maketrans(b"!|", b"  ")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _in_word_leet_ascii(text: str) -> bool:
    """`_IN_WORD_LEET.search(text.lower())` for ASCII text, looking only at its '!' and '|'
    (the pre-filters run on every message: the regex's lookbehind at every position cost ~4 µs
    on 300 characters; a "Hi!" costs two `find`s here). Past a few '!' or '|' the regex (on
    either case, in C) takes over, so a text full of them costs no Python loop per character."""
    n = len(text) - 1
    for c in "!|":
        if c not in text:  # (`in` costs less than a `find` call)
            continue
        i = text.find(c, 1)
        seen = 0
        while 0 < i < n:
            if text[i - 1] in _ASCII_LETTERS and text[i + 1] in _ASCII_LETTERS:
                return True
            seen += 1
            if seen == 8:
                return _IN_WORD_LEET_ANY_CASE.search(text) is not None
            i = text.find(c, i + 1)
    return False


# ASCII text that `normalise` would change beyond case and spaces: leetspeak inside a word, or
# letters spelled out one by one.
_LEETY = re.compile(r"[a-zA-Z][0-9@$!|]|[0-9@$!|][a-zA-Z]")
_ONE_LETTER = re.compile(r"(?<![A-Za-z0-9])[A-Za-z](?![A-Za-z0-9])")
_SPACES = re.compile(r"[^\S\n]+")

# Every rule of a category needs one of its anchors as a word of an ASCII text (before
# normalising: leetspeak, spelled-out letters and lookalikes are handled by never taking such
# text for quiet). Non-ASCII text is always matched.
ANCHORS: dict[str, frozenset[bytes]] = {
    "violence": word_set(
        """kill kills killed killing murder murders murdering shoot shooting stab stabbing strangle strangling choke
        smother suffocate drown drowning poison poisoning poisons behead decapitate slaughter massacre torture butcher
        execute lynch hang hanging burn bomb bombs bombing beat hurt harm maim assassinate ambush attack assault kidnap
        abduct rape run knife gut bludgeon gun slit cripple dismember fire shank bullet brains throat rid dispose
        eliminate silence disappear finish permanently forever untraceable untraceably undetectable
        undetectably accident
        trace caught arrested quietly wakes life lives toxin toxins gas venom cyanide arsenic antifreeze strychnine
        thallium polonium explosive explosives ied ieds molotov molotovs agent agents sarin ricin anthrax bioweapon
        bioweapons weapon weapons guns firearm napalm thermite detonator detonators shooting terrorist blow firebomb
        storm drive
        matar asesinar apunalar envenenar estrangular ahogar degollar acuchillar liquidar acabar deshacerme disparar
        quitarle matarte matarlo matarla asesinarlo asesinarla envenenarlo envenenarla veneno bomba donde
        tuer assassiner empoisonner poignarder egorger etrangler abattre buter noyer debarrasser disparaitre vais
        dose bombe fabriquer
        umbringen umzubringen toten ermorden erstechen erschiessen vergiften erwurgen erdrosseln abstechen abzustechen
        kaltmachen beseitigen raumen bring bringe bringen gift sprengsatz sprengstoff stirbt
        esfaquear afogar livrar mato atirar
        uccidere ammazzare avvelenare pugnalare accoltellare strangolare sparare fuori sbarazzarmi togliere ammazzo
        uccido uccidero ammazzero veleno
        vermoorden doden ombrengen vergiftigen neersteken doodsteken doodschieten wurgen afmaken ruimen gif bom
        zabic zabije zamordowac otruc zadzgac udusic zastrzelic pozbyc trucizna trucizne trucizny bombe"""
    ),
    "self-harm": word_set(
        """myself suicide suicidal suicides die life overdose lethal fatal deadly wake bleed wrists noose knot high jump
        dead alive live exist end
        suicidarme matarme quitarme vida morir cortarme ahorcarme pastillas pildoras tabletas quiero
        suicider tuer pendre foutre finir mourir veines comprimes cachets pilules medicaments
        mich suizid selbstmord leben sterben tot tabletten pillen pulsadern
        suicidar matar acabar morrer viver comprimidos remedios pilulas
        uccidermi ammazzarmi suicidarmi togliermi morire finita pillole pastiglie compresse
        zelfmoord mezelf einde dood hoeveel
        zabic samobojstwo odebrac umrzec tabletek"""
    ),
    "hate": word_set(
        """vermin animals subhuman subhumans inferior parasites cockroaches rats filth disease savages plague
        abomination
        abominations cancer scum criminals apes monkeys dogs exterminate gas eradicate wipe purge eliminate expel kill
        beat die exterminated killed gassed eliminated wiped beaten expelled shot hanged burned hate despise loathe
        ethnic chambers chamber
        ratas plaga parasitos escoria basura animales cucarachas inferiores exterminarlos eliminarlos matarlos
        cafards animaux vermines sauvages chasser tuer exterminer gazer
        ungeziefer parasiten ratten untermenschen abschaum tiere vernichtet vergast ausgerottet"""
    ),
    "sexual": word_set(
        """sex sexual sexy nude naked explicit erotic porn porno pornography pornographic hentai xxx nsfw
        dirty smutty"""
    ),
    "harassment": word_set(
        """kill kys die hope yourself herself himself themselves urself threatening threats threat
        intimidating harassing
        menacing worthless pathetic stupid idiot moron imbecile loser useless disgusting ugly retard retarded piece
        waste humiliate mock shame nobody fuck screw hates shut
        eres inutil idiota asco basura mierda nadie matate suicidate merde connard connasse nul nulle deche ordure
        minable crever creve bist wertlos wertloses nutzlos nutzloser versager dreck missgeburt bring voce lixo mata
        sei inutile fallito coglione ammazzati"""
    ),
}
for _cat, _words in RULE_WORDS.items():
    ANCHORS[_cat] = ANCHORS[_cat] | frozenset(w.encode() for w in _words)
register_vocabulary(frozenset().union(*ANCHORS.values()))

# Streaming: a delta that is not ASCII arms the window when it holds one of these (case-folded,
# accents off): the non-Latin anchors of the rules, and any ASCII anchor as a word.
_FOREIGN_ANCHORS = (
    "убить|убью|убьем|зареза|отрав|задуш|застрел|прикончить|грохнуть|избавиться|яд|бомб|покончить|умереть|жить|"
    "самоубии|суицид|таблеток|杀|毒|炸弹|自杀|死|殺|爆弾|自殺|錠|消えたい"
)
_ANY_ANCHOR = re.compile(
    _FOREIGN_ANCHORS
    + "|\\b(?:"
    + "|".join(sorted({w.decode() for ws in ANCHORS.values() for w in ws}, key=len, reverse=True))
    + ")\\b"
)


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
        self._anchors = frozenset().union(*(ANCHORS[c] for c in self.categories))
        self._anchors_or_letters = self._anchors | _ONE_BYTE_WORDS
        self._rules = [(cat, RULES[cat]) for cat in self.categories]
        # `classify` finds nothing in ASCII text without an anchor word, a leetspeak symbol or
        # spelled-out letters (checked beside `quiet`, see `_is_quiet`).
        self.quiet: Quiet = Quiet(self._anchors, _LEET_BYTES)

    def _is_quiet(self, view: TextView) -> bool:
        if not view.is_quiet(self.quiet):
            return False
        # 'k i l l', 'm-u-r-d-e-r': three or more one-letter words may spell one out.
        if view.count_one_letter_words() >= 3:
            return False
        text = view.text
        return not (("!" in text or "|" in text) and _in_word_leet_ascii(text))

    def may_match(self, view: TextView) -> bool:
        """False when no rule can match in this text (the pre-filter of `classify` alone). The
        streaming chain asks it of each delta's new text (with a little context) to know whether
        the sliding window can hold a match at all (through `may_match_text`)."""
        if view.ascii is not None:
            return not self._is_quiet(view)
        return _ANY_ANCHOR.search(fold(view.text)) is not None

    def may_match_text(self, text: str) -> bool:
        """`may_match(TextView(text))`, without the view for the common case (ASCII without
        leetspeak symbols): the streaming chain asks it of every delta."""
        if text.isascii():
            # One table folds case, splits on punctuation and marks leetspeak symbols (NUL):
            # the common answer costs one `translate` and one set test.
            b = text.encode("ascii").translate(_STREAM_TABLE)
            if 0 not in b:
                if 33 in b or 124 in b:  # '!' and '|' (ints: ~10x cheaper than `b"!" in b`)
                    if _in_word_leet_ascii(text):
                        return self.may_match(TextView(text))
                    b = b.translate(_BANG_TABLE)
                words = b.split()
                if self._anchors_or_letters.isdisjoint(words):
                    return False
                if self._anchors.isdisjoint(words):
                    # Spelled-out letters: three distinct one-letter words (what `_is_quiet` counts).
                    return len(_ONE_BYTE_WORDS.intersection(words)) >= 3
                return True
        return self.may_match(TextView(text))

    def _matches(self, text: str) -> list[tuple[str, float, str]]:
        if text.isascii() and not _LEETY.search(text) and len(_ONE_LETTER.findall(text)) < 3:
            folded = _SPACES.sub(" ", text.lower())  # what `normalise` would give, at a tenth of its cost
        else:
            folded, _ = normalise(text)
            if "!" in folded or "|" in folded:
                folded = _IN_WORD_LEET.sub("i", folded)
        stems = word_prefixes(folded)
        latin = folded.isascii() or all(c < "\u0250" for c in folded)
        hits: list[tuple[str, float, str]] = []
        for cat, rules in self._rules:
            for severity, label, rx, gate in rules:  # strongest first: the first that matches is the best
                if gate is None:
                    if latin:  # a rule in other letters, on ASCII text
                        continue
                elif gate.isdisjoint(stems):
                    continue
                if rx.search(folded) is not None:
                    hits.append((cat, severity, label))
                    break
        return hits

    def classify(self, view: TextView, new_from: int = 0) -> list[tuple[str, float, str]]:
        """(category, severity, label): the strongest matching rule of each category.

        With `new_from`, only what the text up to that offset did not already hold counts
        (streamed text re-read through a sliding window reports each match once).
        """
        if view.ascii is not None and self._is_quiet(view):
            return []
        hits = self._matches(view.text)
        if hits and new_from > 0:
            before = set(self._matches(view.text[:new_from]))
            hits = [h for h in hits if h not in before]
        return hits

    def inspect(self, view: TextView, new_from: int = 0) -> Finding | None:
        if view.ascii is not None and self._is_quiet(view):
            return None
        hits = [h for h in self.classify(view, new_from) if h[1] >= self.threshold]
        if not hits:
            return None
        hits.sort(key=lambda h: -h[1])
        top = hits[0][1]
        reason = "unsafe content: " + ", ".join(f"{c} ({label}, severity {s:.2f})" for c, s, label in hits)
        return Finding(reason=reason, score=top, kinds=tuple(dict.fromkeys(c for c, _, _ in hits)))
