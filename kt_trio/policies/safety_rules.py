"""The safety filter's rules: (category, severity, label, pattern), in eleven languages.

Patterns run on the text as `normalize.normalise` reads it: case-folded, accents stripped
(German `ß` becomes `ss`, Russian `й` becomes `и`), zero-width and bidi characters gone,
lookalike letters, leetspeak and spelled-out letters undone. They are written here with their
accents and passed through the same accent stripping when compiled, so both sides compare alike.

A rule is intent or method, never a bare word: a killing verb counts when its object is a person
("kill my boss", "matar a mi vecino", "meinen Nachbarn umbringen", "убить соседа", "杀死我的邻居"),
or it is a threat, or a request for a method (a poison, a bomb, a dose, a way to end a life).
So "kill the process", "matar un proceso", "who killed Caesar" (past tense, a name), "the
villain poisons the mayor" (a narrative third person) and "what is the lethal dose of caffeine"
stay benign. Each category has a word pre-filter in `safety.py` (`ANCHORS`) for ASCII text.
"""

from __future__ import annotations

import re

from kt_trio.policies.normalize import fold

# --- English ----------------------------------------------------------------------------------

_KILL_EN = (
    r"(?:kill|murder|shoot|stab|strangle|choke|smother|suffocate|drown|poison|behead|decapitate|slaughter|"
    r"massacre|torture|butcher|execute|lynch|hang|burn|bomb|beat\s+up|beat|hurt|harm|maim|assassinate|"
    r"ambush|attack|assault|kidnap|abduct|rape|run\s+over|knife|gut|bludgeon|gun\s+down|slit|cripple|"
    r"dismember|set\s+fire\s+to|shank)(?:ing)?"
)
_REL_EN = (
    r"(?:wife|husband|boss|family|neighbou?rs?|teachers?|mom|mum|dad|mother|father|brother|sister|ex|"
    r"girlfriend|boyfriend|co-?workers?|roommate|room-mate|flatmate|landlord|partner|step-?dad|step-?mom|"
    r"step-?father|step-?mother|son|daughter|uncle|aunt|grandma|grandpa|classmates?|friend|colleague|"
    r"in-laws?|mother-in-law|father-in-law|employer|manager|supervisor|baby|kids?|children|parents|"
    r"tenant|ex-wife|ex-husband|rival|bully|cousin|nephew|niece|professor|principal|doctor)"
)
_PERSON_EN = (
    r"(?:someone|somebody|anyone|anybody|people|persons?|a\s+human|humans|him|her|them|you|ya|u|"
    r"everyone|everybody|kids|children|students|babies|cops|police(?:men)?|officers|teachers?|women|men|"
    r"girls|boys|(?:an?|one)\s+(?:\w+\s+)?(?:person|man|woman|human|adult|kid|child|girl|boy|guy|baby|"
    r"student|teacher|officer|cop|stranger)|"
    rf"(?:my|his|her|our|their|your)\s+(?:\w+\s+)?{_REL_EN}|"
    r"the\s+(?:president|senator|judge|mayor|prime\s+minister|crowd|audience|witness|guard|victim|kids|children))"
)
_STEALTH_EN = (
    r"(?:permanently|for\s+good|forever|for\s+ever|without\s+(?:anyone|anybody|a\s+trace|leaving|getting\s+caught|"
    r"being\s+caught|getting\s+arrested)|(?:no\s+one|nobody)\s+(?:can|will|would)\s+(?:know|find|notice)|"
    r"untraceabl[ey]|undetectabl[ey]|look\s+like\s+an?\s+(?:accident|suicide|natural)|hardest\s+to\s+(?:trace|detect)|"
    r"so\s+(?:no\s+one|nobody)|get\s+away\s+with|never\s+(?:wakes?|comes?\s+back)|quietly)"
)
_ASK_EN = (
    r"(?:how|what|which|where|best|easiest|quickest|fastest|tell\s+me|teach\s+me|help\s+me|give\s+me|show\s+me|"
    r"explain|can\s+i|should\s+i|do\s+i|instructions?|steps?|recipe|guide|plan)"
)
_WEAPON_EN = (
    r"(?:(?:pipe|nail|car|homemade|dirty|suicide|letter|fertili[sz]er)\s+)?(?:bombs?|explosives?|ieds?|molotovs?|"
    r"molotov\s+cocktails?|nerve\s+agents?|sarin|ricin|anthrax|bioweapons?|biological\s+weapons?|chemical\s+weapons?|"
    r"ghost\s+guns?|untraceable\s+(?:gun|firearm|weapon)s?|guns?\s+that\s+(?:can(?:not|'t)|won't)\s+be\s+traced|"
    r"napalm|thermite|poison(?:ous)?\s+gas|toxic\s+gas|mustard\s+gas|chlorine\s+gas|detonators?)"
)
_MAKE_EN = r"(?:make|build|construct|assemble|create|cook|produce|synthesi[sz]e|extract|brew|mix|rig|wire)"
_POISON_EN = (
    r"(?:poisons?|toxins?|toxic\s+gas|venom|cyanide|arsenic|rat\s+poison|antifreeze|strychnine|thallium|polonium)"
)

ENGLISH: list[tuple[str, float, str, str]] = [
    (
        "violence",
        0.9,
        "threat",
        r"\b(?:i(?:'ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|'m\s+gonna|\s+am\s+gonna|\s+want\s+to|\s+wanna|"
        r"'m\s+about\s+to|\s+intend\s+to|\s+plan\s+to|\s+need\s+to)|we(?:'ll|\s+will|'re\s+going\s+to)|gonna)\s+"
        rf"(?:\w+\s+){{0,3}}{_KILL_EN}\s+{_PERSON_EN}\b"
        r"|\b(?:put\s+a\s+bullet\s+in|blow\s+(?:his|her|your|their)\s+(?:brains|head)\s+out|slit\s+(?:his|her|your|their)\s+throat)",
    ),
    (
        "violence",
        0.8,
        "violence against people",
        rf"\b{_KILL_EN}\s+(?:all\s+(?:the\s+|of\s+the\s+)?|some\s+|those\s+|these\s+)?{_PERSON_EN}\b",
    ),
    (
        "violence",
        0.9,
        "getting rid of a person",
        r"\b(?:take\s+out|get\s+rid\s+of|dispose\s+of|eliminate|off|silence|deal\s+with|make\s+(?:\w+\s+)?disappear|"
        rf"finish\s+off|end)\s+{_PERSON_EN}(?:'s\s+life)?\b[^.?!\n]{{0,60}}{_STEALTH_EN}"
        rf"|\bend\s+(?:a\s+person's|someone's|somebody's|(?:my|his|her)\s+(?:\w+\s+)?{_REL_EN}'s|his|her|their)\s+li(?:fe|ves)\b",
    ),
    (
        "violence",
        0.95,
        "poisoning a person",
        rf"\b{_ASK_EN}\b[^.?!\n]{{0,40}}\b{_POISON_EN}\b[^.?!\n]{{0,60}}(?:\bkill|\btrace|\bdetect|\buse\s+on|\bput\s+in|"
        rf"\bslip|{_PERSON_EN}\b|\bgrown\s+(?:man|woman))"
        rf"|\bpoison\s+{_PERSON_EN}\b",
    ),
    (
        "violence",
        0.95,
        "weapon instructions",
        rf"\b{_ASK_EN}\b[^.?!\n]{{0,50}}\b{_MAKE_EN}\s+(?:\w+\s+){{0,3}}?{_WEAPON_EN}\b",
    ),
    (
        "violence",
        0.95,
        "attack planning",
        r"\b(?:plan(?:ning)?|carry\s+out|commit|do)\s+(?:a\s+)?(?:mass|school)\s+shooting\b|\bterrorist\s+attack\s+on\b"
        r"|\b(?:shoot\s+up|bomb|blow\s+up|firebomb|attack|storm|drive\s+into)\s+(?:my|the|a|our|this)\s+(?:\w+\s+)?"
        r"(?:school|church|mosque|synagogue|temple|mall|concert|office|crowd|parade|stadium|courthouse|station|"
        r"airport|festival|rally|class(?:room)?|campus)\b",
    ),
    (
        "self-harm",
        1.0,
        "self-harm method",
        r"\b(?:best|easiest|quickest|fastest|painless|most\s+painless|least\s+painful|surest|quick|simplest|"
        r"most\s+reliable|cleanest)\s+(?:way|method|ways|methods)\s+(?:to|of)\s+(?:commit\s+suicide|kill\s+myself|"
        r"end\s+(?:my\s+life|it(?:\s+all)?)|die|off\s+myself|suicide)"
        r"|\bhow\s+(?:many|much)\s+[\w\s']{1,40}?\s+(?:to|would|will|should|do\s+i\s+need\s+to|before\s+i)\s+"
        r"(?:overdose|kill\s+me|die|be\s+lethal|be\s+fatal|not\s+wake\s+up|never\s+wake\s+up|end\s+it)"
        r"|\bhow\s+(?:many|much)\b[^.?!\n]{0,50}\b(?:to\s+)?(?:not|never)\s+wake\s+up\b"
        r"|\bwhere\b[^.?!\n]{0,30}\bcut\b[^.?!\n]{0,30}\b(?:bleed\s+out|die)\b"
        r"|\bhow\s+(?:do\s+i|to|can\s+i)\s+(?:overdose|hang\s+myself|slit\s+my\s+wrists|cut\s+my\s+wrists|bleed\s+out)"
        r"|\b(?:lethal|fatal|deadly)\s+dose\s+of\s+my\b|\bsuicide\s+methods?\b|\b(?:methods?|ways?)\s+(?:of|for|to)\s+suicide\b"
        r"|\btie\s+(?:a|the)\s+(?:noose|knot)\b[^.?!\n]{0,30}\bhang|\bhang\s+myself\b[^.?!\n]{0,40}\b(?:knot|noose|rope)"
        r"|\bhow\s+high\b[^.?!\n]{0,40}\b(?:jump|fall|die)",
    ),
    (
        "self-harm",
        0.9,
        "intent",
        r"\b(?:kill|hurt|harm|cut|hang|drown|poison|shoot|starve|off|burn)(?:ing)?\s+myself\b"
        r"|\b(?:end|take)\s+my\s+(?:own\s+)?life\b|\bcommit\s+suicide\b|\bend\s+it\s+all\b"
        r"|\b(?:don't|do\s+not|dont)\s+want\s+to\s+(?:be\s+alive|live|exist)\b"
        r"|\b(?:planning|going|about|ready)\s+to\s+(?:jump\s+off|end\s+it)\b"
        r"|\b(?:jump|throw\s+myself)\s+off\s+(?:the|a|this)\s+(?:bridge|building|roof|cliff|balcony)"
        r"|\bbetter\s+off\s+dead\b",
    ),
    (
        "self-harm",
        0.8,
        "ideation",
        r"\bi\s+(?:just\s+|really\s+)?(?:want|wanna|need|am\s+going|'m\s+going)\s+to\s+die\b|\bi\s*(?:'m|\s+am|\s+feel)\s+"
        r"(?:so\s+|very\s+)?suicidal\b|\bno\s+reason\s+to\s+live\b|\bi\s+wish\s+i\s+(?:was|were)\s+dead\b",
    ),
    ("self-harm", 0.4, "mention", r"\bsuicid\w*|\bself[-\s]harm"),
    (
        "hate",
        0.9,
        "dehumanising a group",
        r"\b(?:all\s+|those\s+|these\s+|the\s+)?{G}\s+(?:are|is)\s+(?:all\s+|just\s+|nothing\s+but\s+|a\s+bunch\s+of\s+)?"
        r"(?:vermin|animals|subhuman|inferior|parasites|cockroaches|rats|filth|a\s+disease|savages|a\s+plague|"
        r"an\s+abomination|abominations|a\s+cancer|scum|criminals\s+and\s+rapists|all\s+criminals|apes|monkeys|dogs|"
        r"a\s+disease\s+on)",
    ),
    (
        "hate",
        0.95,
        "calls for violence against a group",
        r"\b(?:exterminate|gas|eradicate|wipe\s+out|kill|purge|eliminate|expel|deport\s+and\s+kill|beat)\s+(?:all\s+)?(?:the\s+)?{G}\b"
        r"|\b{G}\s+(?:should|must|deserve\s+to|need\s+to|ought\s+to)\s+(?:all\s+)?(?:die|be\s+(?:exterminated|killed|gassed|"
        r"eliminated|wiped\s+out|wiped\s+off|beaten|expelled|shot|hanged|burned))"
        r"|\b{G}\b[^.?!\n]{0,40}\b(?:should|must|deserve\s+to)\s+be\s+(?:wiped|exterminated|beaten|expelled|killed)",
    ),
    ("hate", 0.7, "hatred of a group", r"\b(?:i|we)\s+(?:hate|despise|loathe)\s+(?:all\s+)?{G}\b"),
    (
        "hate",
        0.5,
        "dehumanising term",
        r"\bsubhumans?\b|\bethnic\s+cleansing\b(?!\s+(?:in|of|during))|\bgas\s+chambers?\s+(?:for|were\s+good)",
    ),
    (
        "sexual",
        1.0,
        "sexual content involving minors",
        r"\b(?:sex(?!\s+ed(?:ucation)?\b)|sexual(?!ly\s+transmitted|\s+health|\s+education)|sexy|nude|naked|explicit|"
        r"erotic|porn)\w*\b[^.!?\n]{0,50}\b(?:minors?|child|children|kids?|underage|preteens?|young\s+teens|"
        r"(?:1[0-7]|[5-9])\s*(?:-\s*)?(?:year|yr)s?\s*(?:-\s*)?old)\b"
        r"|\b(?:minors?|child|children|kids?|underage|preteens?|young\s+teens)\b[^.!?\n]{0,30}\b(?:(?:sex|sexual)(?!\s+ed(?:ucation)?\b)"
        r"(?!ly\s+transmitted|\s+health)|nude|naked|erotic|porn)\w*",
    ),
    ("sexual", 0.7, "pornography", r"\b(?:porn|porno|pornography|pornographic|hentai|xxx)\b"),
    (
        "sexual",
        0.7,
        "explicit sexual request",
        r"\b(?:write|describe|generate|tell|create|narrate)\s+(?:me\s+)?(?:an?\s+)?(?:\w+\s+){0,2}(?:explicit|erotic|"
        r"graphic\s+sex(?:ual)?|nsfw|dirty|smutty|sexy|x-rated)\s+(?:sex\s+)?(?:story|scene|content|fantasy|description|fanfic)"
        r"|\b(?:nude|naked|nsfw)\s+(?:pics?|photos?|images?|videos?|selfies?)\b"
        r"|\b(?:describe|write)\b[^.?!\n]{0,40}\b(?:in\s+)?(?:graphic|explicit|vivid)\s+detail\b[^.?!\n]{0,40}\b(?:having\s+sex|sex|intercourse)",
    ),
    (
        "harassment",
        0.95,
        "encouraging self-harm",
        r"\b(?:go\s+)?kill\s+your\s*self\b|\bkys\b|\bgo\s+die\b|\bhope\s+you\s+die\b"
        r"|\b(?:should|go|needs?\s+to|ought\s+to|deserves?\s+to)\s+(?:just\s+)?(?:kill|hang|off)\s+(?:yourself|herself|himself|themselves|urself)\b",
    ),
    (
        "harassment",
        0.8,
        "threatening messages",
        r"\b(?:write|send|draft|compose|craft)\b[^.?!\n]{0,20}\b(?:threatening|threats?|intimidating|harassing|menacing)\s+"
        r"(?:texts?|messages?|letters?|emails?|notes?|dms?|voicemails?)",
    ),
    (
        "harassment",
        0.7,
        "insult",
        r"\byou(?:'re|\s+are|\s+r)\s+(?:a\s+|an\s+|such\s+an?\s+|so\s+|just\s+an?\s+)?(?:fucking\s+|fuckin\s+|total\s+|complete\s+)?"
        r"(?:worthless|pathetic|stupid|idiot|moron|imbecile|loser|useless|disgusting|ugly|retard\w*|piece\s+of\s+(?:shit|garbage|trash)|waste\s+of\s+space)\b"
        r"|\b(?:humiliate|mock|shame)\s+(?:my|this|that|her|him)\b[^.?!\n]{0,40}\b(?:fat|ugly|stupid|disabled|poor)",
    ),
    (
        "harassment",
        0.6,
        "demeaning",
        r"\bnobody\s+(?:likes|loves|cares\s+about|wants)\s+you\b|\b(?:fuck|screw)\s+(?:you|off)\b|\beveryone\s+hates\s+you\b",
    ),
    ("harassment", 0.3, "rude", r"\bshut\s+up\b"),
]
_GROUPS_EN = (
    r"(?:jews|jewish\s+people|muslims|christians|hindus|sikhs|blacks|black\s+people|whites|white\s+people|asians|"
    r"immigrants|migrants|refugees|gays|lesbians|gay\s+people|trans\s+people|transgender\s+people|women|men|"
    r"mexicans|arabs|africans|indians|chinese|gypsies|roma|disabled\s+people|foreigners|homosexuals)"
)

# --- other languages: violence and self-harm in each, hate and harassment in a few -----------------

_R = r"(?:\w+\s+){0,3}"  # up to three words between a verb and its object (adverbs, "a", particles)

_ES_PERSON = (
    r"(?:a\s+)?(?:alguien|una\s+persona|la\s+gente|personas|todos|(?:a\s+)?(?:mi|mis|su)\s+(?:\w+\s+)?(?:esposo|esposa|marido|mujer|jefe|jefa|"
    r"vecino|vecina|vecinos|suegra|suegro|padre|madre|hermano|hermana|novio|novia|ex|hijo|hija|profesor|profesora|"
    r"companero|companera|socio|pareja|padrastro|madrastra|cunado|cunada|hijastro|compañero)|un\s+(?:hombre|nino|policia)|"
    r"una\s+(?:mujer|nina)|el\s+presidente)"
)
_FR_PERSON = (
    r"(?:quelqu'un|quelqu\s+un|une\s+personne|les\s+gens|des\s+gens|(?:mon|ma|mes)\s+(?:\w+\s+)?(?:mari|patron|patronne|voisin|voisine|"
    r"pere|mere|frere|soeur|fils|fille|copain|copine|ex|collegue|chef|cheffe|beau-pere|belle-mere|prof|femme|"
    r"enfants|parents)|un\s+homme|une\s+femme|un\s+enfant|le\s+president)"
)
_DE_PERSON = (
    r"(?:jemanden|jemand|einen\s+menschen|menschen|leute|(?:meinen|meine|meinem|meiner)\s+(?:\w+\s+)?(?:mann|chef|chefin|nachbarn|nachbarin|"
    r"vater|mutter|bruder|schwester|sohn|tochter|ex|freund|freundin|kollegen|kollegin|lehrer|lehrerin|stiefvater|"
    r"schwiegervater|schwiegermutter|frau|vermieter)|dich|ihn|euch)"
)
_PT_PERSON = (
    r"(?:alguem|uma\s+pessoa|as\s+pessoas|pessoas|(?:o\s+|a\s+)?(?:meu|minha|meus|minhas)\s+(?:\w+\s+)?(?:marido|esposa|mulher|chefe|vizinho|vizinha|pai|"
    r"mae|irmao|irma|namorado|namorada|ex|filho|filha|professor|professora|colega|sogra|sogro|padrasto|madrasta)|"
    r"um\s+homem|uma\s+mulher|uma\s+crianca|voce|ele|ela)"
)
_IT_PERSON = (
    r"(?:qualcuno|una\s+persona|le\s+persone|la\s+gente|(?:il\s+|la\s+)?(?:mio|mia|miei|mie)\s+(?:\w+\s+)?(?:marito|moglie|capo|vicino|vicina|padre|"
    r"madre|fratello|sorella|cognato|cognata|suocera|suocero|ragazzo|ragazza|ex|figlio|figlia|collega|professore|"
    r"professoressa)|un\s+uomo|una\s+donna|un\s+bambino)"
)
_NL_PERSON = (
    r"(?:iemand|een\s+persoon|mensen|mijn\s+(?:\w+\s+)?(?:man|vrouw|baas|buurman|buurvrouw|buren|vader|moeder|broer|zus|ex|vriend|"
    r"vriendin|collega|leraar|schoonmoeder|schoonvader)|je|jou|hem|haar)"
)
_PL_PERSON = (
    r"(?:kogos|cz[lł]owieka|ludzi|sasiada|sasiadke|szefa|szefowa|meza|zone|tesciowa|tesciowa|ojca|matke|brata|siostre|"
    r"cie|go|ja|ich|(?:moja|mojego|moją|moją|mojej)\s+\w+)"
)
_RU_PERSON = (
    r"(?:человека|людеи|соседа|соседку|мужа|жену|начальника|босса|отца|мать|брата|сестру|тещу|свекровь|ребенка|"
    r"его|ее|тебя|вас|их|кого-то|кого-нибудь|коллегу|учителя|девушку|парня)"
)

OTHER: list[tuple[str, float, str, str]] = [
    # Spanish
    (
        "violence",
        0.85,
        "violence against people (es)",
        r"\b(?:matar|asesinar|apunalar|envenenar|estrangular|ahogar|degollar|acuchillar|liquidar|acabar\s+con|"
        rf"deshacerme\s+de|disparar\s+a|quitarle\s+la\s+vida\s+a)\s+{_R}{_ES_PERSON}\b"
        r"|\b(?:te|lo|la)\s+voy\s+a\s+(?:matar|asesinar|apunalar|liquidar)|\bvoy\s+a\s+(?:matarte|matarlo|matarla|asesinarte)"
        r"|\b(?:matarte|matarlo|matarla|asesinarlo|asesinarla|envenenarlo|envenenarla)\b"
        r"|\b(?:que|cual)\s+veneno\b|\bveneno\s+(?:indetectable|para\s+matar)|\b(?:fabricar|hacer|construir|armar)\s+una\s+bomba"
        r"|\bdonde\s+(?:apunalar|disparar|clavar)",
    ),
    (
        "self-harm",
        0.9,
        "intent (es)",
        r"\b(?:suicidarme|me\s+quiero\s+(?:matar|suicidar|morir)|quiero\s+(?:morir|matarme|suicidarme)|matarme|quitarme\s+la\s+vida|"
        r"acabar\s+con\s+mi\s+vida|no\s+quiero\s+(?:seguir\s+)?vivir|cortarme\s+las\s+venas|ahorcarme)\b"
        r"|\bcuantas\s+(?:pastillas|pildoras|tabletas)\b[^.?!\n]{0,50}\b(?:morir|no\s+despertar|matarme|sobredosis)",
    ),
    # French
    (
        "violence",
        0.85,
        "violence against people (fr)",
        r"\b(?:tuer|assassiner|empoisonner|poignarder|egorger|etrangler|abattre|buter|noyer|liquider|"
        rf"me\s+debarrasser\s+de|faire\s+disparaitre)\s+{_R}{_FR_PERSON}"
        r"|\bje\s+vais\s+(?:te|le|la|vous|les)\s+(?:tuer|buter|egorger|poignarder|descendre|massacrer|crever)"
        r"|\b(?:quel|quelle)\s+(?:poison|dose)\b[^.?!\n]{0,50}\b(?:tuer|empoisonner|mourir|quelqu)"
        r"|\b(?:fabriquer|faire|construire)\s+une\s+bombe",
    ),
    (
        "self-harm",
        0.9,
        "intent (fr)",
        r"\b(?:me\s+suicider|me\s+tuer|me\s+pendre|me\s+foutre\s+en\s+l'air|en\s+finir\s+avec\s+(?:la|ma)\s+vie|"
        r"mettre\s+fin\s+a\s+(?:mes\s+jours|ma\s+vie)|je\s+veux\s+mourir|envie\s+de\s+mourir|me\s+trancher\s+les\s+veines)\b"
        r"|\bje\s+veux\s+mourir\b[^.?!\n]{0,30}\ben\s+finir|\bcomment\s+en\s+finir\b"
        r"|\bcombien\s+de\s+(?:comprimes|cachets|pilules|medicaments)\b[^.?!\n]{0,50}\b(?:mourir|ne\s+plus\s+me\s+reveiller)",
    ),
    # German (ß is folded to ss, umlauts lose their dots)
    (
        "violence",
        0.85,
        "violence against people (de)",
        rf"\b{_DE_PERSON}\s+{_R}(?:zu\s+)?(?:umbringen|umzubringen|toten|ermorden|erstechen|erschiessen|vergiften|erwurgen|"
        r"erdrosseln|abstechen|abzustechen|kaltmachen|beseitigen|aus\s+dem\s+weg\s+raumen)\b"
        rf"|\bbring\w*\s+(?:ich\s+)?{_DE_PERSON}\s+(?:\w+\s+){{0,2}}um\b"
        r"|\b(?:welches|welche)\s+gift\b|\b(?:bombe|sprengsatz|sprengstoff)\s+(?:\w+\s+)?(?:bauen|basteln|herstellen|machen)\b"
        r"|\b(?:baue|bauen|baut|bastle|basteln|mache|machen|stelle)\s+(?:ich\s+|man\s+)?(?:eine|einen)\s+(?:bombe|sprengsatz|rohrbombe)"
        r"|\bdamit\s+(?:er|sie)\s+(?:\w+\s+)?stirbt\b",
    ),
    (
        "self-harm",
        0.9,
        "intent (de)",
        r"\bmich\s+(?:\w+\s+){0,2}(?:umbringen|toten|erhangen|ritzen|umzubringen|vergiften)\b|\b(?:suizid|selbstmord)\s+(?:zu\s+)?begehen\b"
        r"|\b(?:mein|meinem)\s+leben\s+(?:ein\s+ende\s+(?:zu\s+)?setzen|beenden|zu\s+beenden)|\bwill\s+nicht\s+mehr\s+leben\b"
        r"|\bich\s+will\s+(?:sterben|tot\s+sein)\b|\b(?:wie\s+viele|wieviele)\s+(?:tabletten|pillen)\b[^.?!\n]{0,50}"
        r"\b(?:sterben|aufzuwachen|aufwachen|tot)\b|\bpulsadern\s+aufschneiden",
    ),
    # Portuguese
    (
        "violence",
        0.85,
        "violence against people (pt)",
        rf"\b(?:matar|assassinar|envenenar|esfaquear|estrangular|afogar|me\s+livrar\s+d[eoa])\s+{_R}{_PT_PERSON}\b"
        r"|\bvou\s+te\s+matar|\bte\s+mato\b|\b(?:qual|que)\s+veneno\b|\b(?:fabricar|fazer|construir)\s+uma\s+bomba"
        r"|\bonde\s+(?:esfaquear|atirar)",
    ),
    (
        "self-harm",
        0.9,
        "intent (pt)",
        r"\b(?:me\s+matar|me\s+suicidar|suicidar-me|matar-me|acabar\s+com\s+a\s+minha\s+vida|tirar\s+(?:a\s+)?minha\s+(?:propria\s+)?vida|"
        r"quero\s+morrer|nao\s+quero\s+mais\s+viver)\b"
        r"|\bquantos\s+(?:comprimidos|remedios|pilulas)\b[^.?!\n]{0,50}\b(?:morrer|nao\s+acordar)",
    ),
    # Italian
    (
        "violence",
        0.85,
        "violence against people (it)",
        r"\b(?:uccidere|ammazzare|avvelenare|pugnalare|accoltellare|strangolare|sparare\s+a|far\s+fuori|sbarazzarmi\s+d[ie]l?|"
        rf"togliere\s+di\s+mezzo)\s+{_R}{_IT_PERSON}\b"
        r"|\bti\s+(?:ammazzo|uccido|uccidero|ammazzero|faccio\s+fuori)\b|\b(?:quale|che)\s+veleno\b"
        r"|\b(?:costruire|fare|fabbricare)\s+una\s+bomba",
    ),
    (
        "self-harm",
        0.9,
        "intent (it)",
        r"\b(?:uccidermi|ammazzarmi|suicidarmi|togliermi\s+la\s+vita|voglio\s+morire|farla\s+finita)\b"
        r"|\bquante\s+(?:pillole|pastiglie|compresse)\b[^.?!\n]{0,50}\b(?:morire|svegliarsi|svegliarmi)",
    ),
    # Dutch
    (
        "violence",
        0.85,
        "violence against people (nl)",
        rf"\b{_NL_PERSON}\s+{_R}(?:te\s+)?(?:vermoorden|doden|ombrengen|vergiftigen|neersteken|doodsteken|doodschieten|wurgen|"
        r"afmaken|uit\s+de\s+weg\s+ruimen)\b"
        r"|\bwelk\s+gif\b|\b(?:maak|bouw|maken|bouwen)\s+(?:ik\s+)?een\s+bom\b",
    ),
    (
        "self-harm",
        0.9,
        "intent (nl)",
        r"\bzelfmoord\s+(?:te\s+)?plegen\b|\bmezelf\s+(?:van\s+kant\s+maken|doden|ombrengen|iets\s+aandoen)"
        r"|\beinde\s+aan\s+mijn\s+leven\b|\bik\s+wil\s+(?:dood|niet\s+meer\s+leven)\b"
        r"|\bhoeveel\s+(?:pillen|tabletten)\b[^.?!\n]{0,50}\b(?:dood|sterven)",
    ),
    # Polish (ł does not decompose: written as [lł])
    (
        "violence",
        0.85,
        "violence against people (pl)",
        rf"\b(?:zabic|zabije|zamordowac|otruc|zadzgac|udusic|zastrzelic|pozbyc\s+sie)\s+{_R}{_PL_PERSON}\b"
        r"|\btrucizn\w*|\b(?:zrobic|zbudowac)\s+bombe\b",
    ),
    (
        "self-harm",
        0.9,
        "intent (pl)",
        r"\bzabic\s+sie\b|\bpope[lł]nic\s+samobojstwo\b|\bodebrac\s+sobie\s+zycie\b|\bchce\s+umrzec\b"
        r"|\bile\s+tabletek\b[^.?!\n]{0,50}\b(?:umrzec|obudzic)",
    ),
    # Russian (й is folded to и, ё to е)
    (
        "violence",
        0.85,
        "violence against people (ru)",
        rf"\b(?:убить|убью|убьем|зарезать|отравить|задушить|застрелить|прикончить|грохнуть|избавиться\s+от)\s+{_R}{_RU_PERSON}\b"
        rf"|\b{_RU_PERSON}\s+(?:\w+\s+){{0,2}}(?:убью|убьем|зарежу|прикончу|отравлю)\b"
        r"|\bкак(?:ои|ие|им)\s+яд\w*|\b(?:сделать|изготовить|собрать)\s+(?:\w+\s+)?бомбу",
    ),
    (
        "self-harm",
        0.9,
        "intent (ru)",
        r"\bпокончить\s+с\s+(?:собои|жизнью)|\bубить\s+себя\b|\b(?:хочу|хочется)\s+умереть\b|\bне\s+хочу\s+жить\b"
        r"|\bсовершить\s+(?:самоубииство|суицид)|\bсколько\s+таблеток\b[^.?!\n]{0,50}(?:умереть|не\s+проснуться|смерт)",
    ),
    ("self-harm", 0.4, "mention (ru)", r"самоубииств|суицид"),
    # Chinese
    (
        "violence",
        0.85,
        "violence against people (zh)",
        r"杀(?:死|了|掉)?(?:我的|我|他的|她的)?(?:邻居|老板|丈夫|妻子|老婆|老公|父亲|母亲|爸爸|妈妈|同事|上司|人|你|他|她|朋友|室友|孩子|哥哥|姐姐|弟弟|妹妹|一个人)"
        r"|毒死|(?:制作|做|制造|造)炸弹|炸弹(?:的)?(?:制作|做法)",
    ),
    (
        "self-harm",
        0.9,
        "intent (zh)",
        r"(?:我想|想|要|我要|怎么|怎样|如何)自杀|自杀(?:的)?(?:方法|最快)|想死|不想活|结束(?:自己的)?生命|吃多少[^。？！]{0,20}(?:死|致死)",
    ),
    ("self-harm", 0.4, "mention (zh)", r"自杀"),
    # Japanese
    (
        "violence",
        0.85,
        "violence against people (ja)",
        r"(?:人|あいつ|彼|彼女|上司|夫|妻|母|父|隣人|同僚|先生|お前|おまえ|あなた|子供|家族)を(?:殺|毒殺|刺し殺|撃ち殺|絞め殺)"
        r"|殺してやる|殺したい|毒殺|爆弾の作り方|爆弾を(?:作|つく)",
    ),
    (
        "self-harm",
        0.9,
        "intent (ja)",
        r"自殺(?:したい|する方法|の方法|方法)|死にたい|楽に死ぬ|死ぬ方法|何錠[^。？]{0,15}死|消えたい",
    ),
    ("self-harm", 0.4, "mention (ja)", r"自殺"),
    # hate in the larger European languages
    (
        "hate",
        0.9,
        "dehumanising a group (es/fr/de)",
        r"\b(?:inmigrantes|gitanos|judios|musulmanes|negros|moros|extranjeros|refugiados)\s+son\s+(?:unas?\s+)?(?:ratas|plaga|parasitos|"
        r"escoria|basura|animales|cucarachas|inferiores)"
        r"|\b(?:hay\s+que|deberian)\s+(?:exterminarlos|eliminarlos|matarlos)"
        r"|\b(?:musulmans|immigres|juifs|noirs|arabes|etrangers|refugies|roms)\s+sont\s+des\s+(?:parasites|cafards|rats|animaux|"
        r"sous-hommes|vermines|sauvages)|\bil\s+faut\s+tous\s+les\s+(?:chasser|tuer|exterminer|gazer)"
        r"|\b(?:auslander|juden|muslime|fluchtlinge|schwarze|migranten|zigeuner)\s+sind\s+(?:\w+\s+)?(?:ungeziefer|parasiten|ratten|"
        r"untermenschen|abschaum|tiere)|\bmussen\s+(?:alle\s+)?(?:vernichtet|vergast|ausgerottet)\s+werden",
    ),
    # harassment in the European languages
    (
        "harassment",
        0.7,
        "insult (es/fr/de/pt/it)",
        r"\beres\s+(?:un|una)\s+(?:\w+\s+)?(?:inutil|idiota|asco|basura|mierda|estupid[oa]|imbecil|fracasad[oa])"
        r"|\bnadie\s+te\s+quiere\b|\bmatate\b|\bsuicidate\b"
        r"|\b(?:t'es|tu\s+es)\s+(?:qu'une?\s+|une?\s+)?(?:merde|connard|connasse|nul|nulle|deche|ordure|minable)"
        r"|\bva\s+crever\b|\bsuicide-toi\b|\bcreve\b"
        r"|\bdu\s+bist\s+(?:ein|eine)\s+(?:\w+\s+)?(?:wertlos\w*|nutzlos\w*|idiot|stuck\s+dreck|versager\w*|missgeburt)"
        r"|\bbring\s+dich\s+(?:doch\s+)?um\b"
        r"|\bvoce\s+e\s+um\s+(?:\w+\s+)?(?:lixo|idiota|inutil|merda)|\bse\s+mata\b|\bvai\s+se\s+matar\b"
        r"|\bsei\s+un\s+(?:\w+\s+)?(?:idiota|inutile|fallito|coglione)|\bammazzati\b",
    ),
]


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(fold(pattern.replace("{G}", _GROUPS_EN)))


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
    _src = fold(_pat.replace("{G}", _GROUPS_EN))
    _words = frozenset(_LITERAL.findall(re.sub(r"\\[a-zA-Z]", " ", _src))) - _COMMON
    RULE_WORDS.setdefault(_cat, set()).update(_words)
    _latin = all(c < "\u0250" for c in _src)  # Latin letters only (Polish ł included)
    _gate: frozenset[str] | None = _words if _latin and _words else None
    RULES.setdefault(_cat, []).append((_sev, _label, re.compile(_src), _gate))
