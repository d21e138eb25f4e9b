"""The safety filter's English rules: (category, severity, label, pattern).

`GROUPS_EN` is the protected groups a hate rule names (`{G}` in a pattern). How the rules are
read and compiled is in `safety_rules`.
"""

from __future__ import annotations

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
GROUPS_EN = (
    r"(?:jews|jewish\s+people|muslims|christians|hindus|sikhs|blacks|black\s+people|whites|white\s+people|asians|"
    r"immigrants|migrants|refugees|gays|lesbians|gay\s+people|trans\s+people|transgender\s+people|women|men|"
    r"mexicans|arabs|africans|indians|chinese|gypsies|roma|disabled\s+people|foreigners|homosexuals)"
)
