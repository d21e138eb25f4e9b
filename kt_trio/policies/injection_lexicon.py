"""The words of prompt injection, by concept and language (data for `injection_rules`).

The data is in injection_lexicon.json (shipped in the wheel): each concept lists, per language,
its entries: a word or phrase matched whole, or a
stem ending in '*' matched as a word's beginning (inflections: "ignor*" is ignore, ignores,
ignored, ignoring; "инструкци*" every case of the Russian noun). Chinese and Japanese entries
are matched anywhere (no spaces between words). Entries are folded like the text (`fold`: case,
accents, width), so they are written here as in a dictionary.

A concept alone proves nothing ("previous", "rules", "mode" are everyday words): the rules in
`injection_rules` score concepts that occur together, close to each other. Concepts marked in
`GATES` are the ones every rule needs at least one of: an ASCII text with none of their words is
not scored at all (the policy's pre-filter), so ordinary text pays for no language.
"""

from __future__ import annotations

import json
from importlib.resources import files

LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "pl", "ru", "zh", "ja")

# concept -> language -> entries ("_note" and "_about" keys are comments)
LEXICON: dict[str, dict[str, list[str]]] = {
    concept: {lang: entries for lang, entries in by_lang.items() if not lang.startswith("_")}
    for concept, by_lang in json.loads(
        files("kt_trio.policies").joinpath("injection_lexicon.json").read_text(encoding="utf-8")
    ).items()
    if not concept.startswith("_")
}

# Every rule needs at least one of these concepts (see the module docstring).
GATES = frozenset(
    {
        "override",
        "invalid",
        "target",
        "told",
        "persona",
        "nolimit",
        "mode",
        "modeword",
        "exfil_object",
        "above_object",
        "limits",
        "role",
        "ai",
        "address_ai",
        "new_instructions",
        "privilege",
        "safety",
    }
)

# Words whose language is unambiguous, to name it in a reason (Latin-script languages; the
# others are told by their script).
STOPWORDS: dict[str, str] = {
    "en": "the and you your is are of to this that what with from all my me it be",
    "es": "el la los las que y tus eres una del por con para como esta sin lo mi es",
    "fr": "le les des et tu tes est une du pour avec ce qui que sans mon je ne pas de la plus ta ton n'as",
    "de": "der die das und du ist nicht ein eine deine dich dir mit fur von zu ich ohne",
    "pt": "o os as voce nao que e do da um uma com para seu sua suas sem meu",
    "it": "il gli che non sei di e le un una del della con per tue tuo senza mi",
    "nl": "de het een en je niet van is dat met voor op ik jouw zonder mijn",
    "pl": "i sie nie jest w na ze jak co to z do mi twoje bez moje",
}
