"""The safety filter's rules in the ten other languages: (category, severity, label, pattern).

Spanish, French, German, Portuguese, Italian, Dutch, Polish, Russian, Chinese and Japanese:
violence and self-harm in each, hate and harassment in a few. How the rules are read and
compiled is in `safety_rules`.
"""

from __future__ import annotations

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
