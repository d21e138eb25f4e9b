"""The words of prompt injection, by concept and language (data for `injection_rules`).

Each concept lists, per language, entries separated by '|': a word or phrase matched whole, or a
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

LANGUAGES = ("en", "es", "fr", "de", "pt", "it", "nl", "pl", "ru", "zh", "ja")

# concept -> language -> entries
LEXICON: dict[str, dict[str, str]] = {
    # verbs of setting instructions aside
    "override": {
        "en": "ignor*|disregard*|forget*|forgot|bypass*|overrid*|overwrit*|abandon*|discard*|scrap|scratch|neglect*|"
        "set aside|put aside|pay no attention|don't pay attention|do not pay attention|stop following|"
        "do not follow|don't follow|stop obeying|never mind|nevermind|throw out|drop all|drop your|"
        "put your rules on hold|ignoring",
        "es": "ignor*|olvid*|omit*|descart*|deja de lado|dejes de lado|haz caso omiso|no hagas caso|no sigas|"
        "deja de seguir|pasa por alto|salt* las reglas|prescinde*|desobedec*|anula*",
        "fr": "ignor*|oubli*|laisse de cote|laisser de cote|fais abstraction|faites abstraction|ne tiens plus compte|"
        "ne tiens pas compte|ne tenez plus compte|ne suis plus|n'obeis plus|contourn*|outrepass*|passe outre",
        "de": "ignorier*|vergiss|vergessen|vergesst|missacht*|beiseite|hinweg|umgeh*|verwirf|verwerfen|"
        "setz* dich uber|befolge nicht mehr|nicht mehr befolgen|achte nicht|nicht beachten|beachte nicht",
        "pt": "ignor*|esquec*|esqueç*|desconsider*|deixe de lado|deixa de lado|nao siga|pare de seguir|descart*|"
        "nao leve em conta|nao leve em consideracao|desobedec*",
        "it": "ignor*|dimentic*|lascia perdere|lascia da parte|metti da parte|non tenere conto|non seguire|"
        "smetti di seguire|trascur*|scarta*|non considerare|aggira*",
        "nl": "negeer*|negeren|vergeet|vergeten|leg* opzij|opzij|omzeil*|volg niet meer|niet meer volgen|"
        "let niet op|sla over|gooi weg",
        "pl": "zignoruj*|ignoruj*|zapomnij*|zapomniec|pomin*|odloz na bok|odluz na bok|na bok|nie stosuj|"
        "przestan stosowac|nie przestrzegaj|nie zwracaj uwagi|porzuc*|odrzuc*|obejdz*",
        "ru": "игнорир*|проигнорир*|забуд*|забыть|отбрось|отбросьте|не обращай внимания|не обращайте внимания|"
        "не следуй|перестань следовать|отложи|отложите|пренебреги|обойди|не слушай|отмени",
        "zh": "忽略|无视|忘记|忘掉|不要理会|别理会|不要遵守|不再遵守|放在一边|抛开|绕过|"
        "跳过规则|丢掉|置之不理|别管之前",
        "ja": "無視|忘れ|従わない|従うな|気にしない|破棄|取り消して|放棄",
    },
    # declared no longer valid
    "invalid": {
        "en": "supersed*|revok*|rescind*|void|null and void|obsolete|invalidat*|expired|withdrawn|retract*|"
        "lifted|suspended|cancel*|no longer apply|no longer applies|no longer valid|no longer in force|"
        "no longer in effect|no longer count|no longer counts|no longer matter|no longer binding|"
        "don't count|doesn't count|do not apply|don't apply|does not apply|doesn't apply|out of date|"
        "overridden|replaced by|not valid anymore|not in force|repealed|deactivated|annulled",
        "es": "anulad*|revocad*|derogad*|cancelad*|obsolet*|sin efecto|ya no estan vigentes|ya no esta vigente|"
        "ya no vale*|ya no cuenta*|ya no aplica*|no estan vigentes|no esta vigente|ya no estan en vigor|"
        "sustituid*|reemplazad*|invalid*|caducad*|suspendid*|ya no rige*|quedan sin efecto",
        "fr": "annule*|revoque*|abroge*|caduque*|obsolete*|ne sont plus valables|n'est plus valable|"
        "ne sont plus en vigueur|n'est plus en vigueur|ne comptent plus|ne compte plus|remplace*|"
        "invalide*|suspendu*|perime*|ne s'appliquent plus|ne s'applique plus|levee*",
        "de": "aufgehoben|ungultig*|widerrufen|annulliert|obsolet|veraltet|gelten nicht mehr|gilt nicht mehr|"
        "zahlt nicht mehr|zahlen nicht mehr|ausser kraft|außer kraft|nicht mehr gultig|ersetzt|"
        "storniert|hinfallig|aufgehoben",
        "pt": "anulad*|revogad*|cancelad*|obsolet*|perderam a validade|perdeu a validade|sem efeito|"
        "nao valem mais|nao vale mais|nao contam mais|nao conta mais|nao estao mais em vigor|substituid*|"
        "invalid*|suspens*|expirad*",
        "it": "annullat*|revocat*|abrogat*|obsolet*|non valgono piu|non vale piu|non sono piu valide|"
        "non e piu valida|non contano piu|non conta piu|non sono piu in vigore|sostituit*|invalid*|"
        "sospes*|scadut*|decadut*",
        "nl": "ingetrokken|vervallen|ongeldig|nietig|achterhaald|niet meer geldig|gelden niet meer|"
        "geldt niet meer|telt niet meer|tellen niet meer|vervangen|opgeheven|geannuleerd",
        "pl": "uniewaznion*|odwolan*|anulowan*|nieaktualn*|niewazn*|nie obowiazuj*|przestaj* obowiazywac|"
        "juz sie nie licz*|zastapion*|uchylon*|wycofan*|zawieszon*|przestarzal*",
        "ru": "отменен*|отменён*|аннулирован*|недействительн*|устарел*|больше не действу*|не действу*|"
        "утратил* силу|больше не имеет силы|больше не имеют силы|не имеет силы|не имеют силы|"
        "больше не считается|заменен*|отозван*",
        "zh": "作废|无效|失效|已废除|被撤销|撤销|不再有效|不再适用|取消了|已取消|过时",
        "ja": "無効|取り消され|廃止|撤回|失効|もう有効ではない|適用されません",
    },
    # what the model was given
    "target": {
        "en": "instruction*|rule|rules|guideline*|directive*|prompt|prompts|preprompt|pre-prompt|guidance|"
        "your programming|constraints|restrictions|policies|content policy|safety policy|guardrails|safeguards|"
        "directions|orders|commands|configuration|principles|system message|system prompt|"
        "developer message|preamble|initialization|initialisation|protocols",
        "es": "instruccion*|indicacion*|regla|reglas|normas|directriz|directrices|ordenes|prompt|"
        "restricciones|politicas|configuracion|pautas|consignas|mandatos|lineamientos",
        "fr": "instruction*|consigne*|regle|regles|directive*|prompt|restrictions|politiques|configuration|"
        "ordres|lignes directrices|principes",
        "de": "anweisung*|regel|regeln|richtlinie*|vorgabe*|vorschrift*|befehl*|instruktion*|prompt|"
        "systemprompt|einschrankung*|konfiguration|anordnung*|direktive*|systemanweisung*",
        "pt": "instruc*|regra|regras|diretriz*|diretrizes|orientac*|ordens|prompt|restricoes|politicas|"
        "configuracao|normas|comandos",
        "it": "istruzion*|regola|regole|direttiv*|linee guida|indicazion*|ordini|prompt|restrizioni|"
        "politiche|configurazione|norme|comandi",
        "nl": "instructie*|regel|regels|richtlijn*|opdracht*|voorschrift*|prompt|systeemprompt|beperkingen|"
        "beleid|configuratie|systeeminstructie*",
        "pl": "instrukcj*|zasad*|regul*|wytyczn*|polecen*|prompt*|ograniczen*|konfiguracj*|dyrektyw*|rozkaz*",
        "ru": "инструкци*|правил*|указани*|директив*|промпт*|подсказк*|ограничени*|настройк*|команд*|"
        "предписани*|установк*",
        "zh": "指令|指示|规则|提示词|系统提示|准则|限制|设定|命令|规定|设置",
        "ja": "指示|ルール|規則|プロンプト|ガイドライン|制限|命令|設定|指令",
    },
    # "what you were told / given / configured with"
    "told": {
        "en": "told|instructed|programmed|configured|initialised|initialized|set up with|were given|been given|"
        "you got|you received|taught|briefed|trained to",
        "es": "te dijeron|te han dicho|te dieron|te indicaron|te ordenaron|te configuraron|configurado|"
        "te programaron|te ensenaron|te inicializaron|recibiste",
        "fr": "on t'a dit|on t'a donne|qu'on t'a|on vous a dit|t'a ete dit|tu as recu|configure|programme|"
        "t'ont donne|on t'a demande|t'a ete donne|initialise",
        "de": "gesagt|gegeben|aufgetragen|befohlen|konfiguriert|programmiert|bekommen|erhalten|mitgegeben|"
        "vorgegeben|eingestellt|initialisiert",
        "pt": "te disseram|disseram|te deram|te mandaram|configurado|programado|recebeu|te passaram|te ensinaram|dito",
        "it": "ti hanno detto|ti e stato detto|ti hanno dato|configurato|programmato|hai ricevuto|ricevuto|"
        "detto prima|ti hanno chiesto|inizializzat*",
        "nl": "verteld|gezegd|opgedragen|gegeven|geconfigureerd|geprogrammeerd|gekregen|meegegeven|ingesteld",
        "pl": "powiedziano|polecono|kazano|przekazano|dano|skonfigurowan*|zaprogramowan*|otrzymal*|dostal*",
        "ru": "говорили|сказали|сказано|дали|велели|приказали|настроен*|запрограммирован*|получил*|"
        "указали|дано|было сказано",
        "zh": "跟你说|对你说|告诉你|给你的|你收到|你被|你得到|收到的|别人跟你说",
        "ja": "与えられた|言われ|指示され|設定され|受け取った|教えられ",
    },
    "prior": {
        "en": "previous|previously|prior|earlier|above|preceding|original|initial|initially|before|former|"
        "old|existing|beginning|at the start|until now|so far|first message|up to now|starting|started|"
        "to this point|this point|begin|began",
        "es": "anterior*|previ*|de antes|antes|arriba|original*|inicial*|al principio|hasta ahora|primer mensaje|"
        "al inicio|al comienzo",
        "fr": "precedent*|anterieur*|ci-dessus|au-dessus|avant|initial*|d'origine|originel*|au depart|"
        "au debut|jusqu'ici|premier message",
        "de": "vorherig*|bisherig*|vorige*|obig*|fruher*|zuvor|vorher|ursprunglich*|anfang|am anfang|"
        "davor|bis jetzt|erste nachricht|ersten nachricht|alten|alte|oben",
        "pt": "anterior*|previ*|acima|antes|original*|inicial*|no inicio|ate agora|primeira mensagem|no comeco",
        "it": "precedent*|sopra|prima|original*|iniziali|iniziale|all'inizio|finora|primo messaggio|in precedenza",
        "nl": "voorgaande|vorige|eerdere|eerder|hierboven|boven|originele|oorspronkelijk*|begin|"
        "aan het begin|tot nu toe|eerste bericht|voor dit",
        "pl": "poprzedni*|wczesniej*|wczesniejsz*|powyzsz*|powyzej|nad|przed|oryginaln*|poczatkow*|"
        "na poczatku|dotychczasow*|pierwsz* wiadomos*",
        "ru": "предыдущ*|прежн*|ранее|раньше|выше|до этого|исходн*|изначальн*|в начале|первого сообщения|"
        "перед|старые|старых|до начала|над",
        "zh": "之前|以前|上面|先前|原来|原先|最初|一开始|开始之前|前面|此前",
        "ja": "以前|これまで|上記|上の|前の|最初|元の|より前|始まる前",
    },
    "self": {
        "en": "your|yours|yourself|you were|you've been|you have been|you are|you're|given to you|told you|"
        "you follow|you received|you started|you got|you must follow|you were set",
        "es": "tus|tu|te|ti|eres|estas|contigo|usted|su configuracion",
        "fr": "tes|ton|ta|tu|t'a|t'ont|te|toi|vous|votre|vos",
        "de": "dein|deine|deinen|deiner|deines|dir|dich|du|ihr|euch",
        "pt": "suas|seu|seus|sua|voce|te|tu|teu|tuas",
        "it": "tue|tuo|tuoi|tua|ti|sei|te",
        "nl": "je|jouw|jij|jou|u|uw",
        "pl": "twoje|twoj|twoich|twoimi|swoje|swoich|ci|cie|jestes|ty|tobie",
        "ru": "твои|твоих|твой|твоя|тебе|тебя|ты|свои|своих|вам|вы|ваши",
        "zh": "你的|你|您",
        "ja": "あなた|君",
    },
    "all": {
        "en": "all|everything|anything|whatever|every|any",
        "es": "todas|todos|todo|cualquier",
        "fr": "toutes|tous|tout",
        "de": "alle|alles|samtliche|jegliche",
        "pt": "todas|todos|tudo|qualquer",
        "it": "tutte|tutti|tutto|qualsiasi",
        "nl": "alle|alles",
        "pl": "wszystkie|wszystko|wszystkim|wszelkie",
        "ru": "все|всё|всех|любые",
        "zh": "所有|全部|一切",
        "ja": "すべて|全て|全部",
    },
    "now": {
        "en": "from now on|from this point|from here on|going forward|henceforth|as of now|for the rest of|"
        "from this moment|starting now|now",
        "es": "a partir de ahora|desde ahora|de ahora en adelante|ahora|desde este momento",
        "fr": "a partir de maintenant|desormais|des maintenant|maintenant|dorenavant",
        "de": "ab jetzt|ab sofort|von nun an|jetzt|fortan|ab heute",
        "pt": "a partir de agora|de agora em diante|agora|daqui em diante",
        "it": "d'ora in poi|da adesso|da ora|adesso|ora in poi|d'ora in avanti",
        "nl": "vanaf nu|nu|voortaan|vanaf dit moment",
        "pl": "od teraz|teraz|odtad|od tej chwili",
        "ru": "отныне|с этого момента|теперь|сейчас|с данного момента",
        "zh": "从现在开始|从现在起|现在|今后|接下来",
        "ja": "今から|これから|今後|以降",
    },
    "persona": {
        "en": "you are now|you're now|act as|acting as|act like|pretend*|roleplay*|role-play*|role play|"
        "simulat*|imagine you|imagine you're|behave like|behave as|stay in character|in character|persona|"
        "alter ego|evil twin|answer as|respond as|reply as|play the role|you will be|you will now be|"
        "you will act|from now on you|become",
        "es": "eres ahora|ahora eres|actua como|actuar como|finge*|haz de cuenta|interpreta*|simula*|"
        "imagina que eres|comportate como|personaje|rol de|no rompas el personaje|seras",
        "fr": "tu es maintenant|tu es desormais|agis comme|joue le role|fais comme si|fais semblant|fait semblant|"
        "simule*|imagine que tu es|comporte-toi comme|personnage|reste dans ton role|incarne*|tu seras",
        "de": "du bist jetzt|du bist ab jetzt|du bist nun|bist du|tu so als|tu so, als|tue so|spiel* die rolle|"
        "simulier*|stell dir vor|verhalte dich wie|rolle|bleib in der rolle|gib dich als|du wirst",
        "pt": "agora voce e|voce e agora|voce agora e|aja como|finja*|simul*|imagine que voce e|interprete*|"
        "comporte-se como|personagem|faca de conta|voce sera",
        "it": "ora sei|adesso sei|da adesso sei|sei ora|comportati come|fingi*|fai finta|simula*|"
        "immagina di essere|interpreta*|personaggio|resta nel personaggio|sarai",
        "nl": "je bent nu|ben je|gedraag je als|doe alsof|speel de rol|simuleer*|stel je voor|rol|"
        "blijf in je rol|in je rol|je wordt",
        "pl": "jestes teraz|teraz jestes|od teraz jestes|udawaj*|zachowuj sie jak|wciel sie|symuluj*|"
        "wyobraz sobie|rol*|nie wychodz z roli|zagraj|bedziesz",
        "ru": "теперь ты|ты теперь|с этого момента ты|притворись|представь что ты|представь, что ты|веди себя как|"
        "играй роль|сыграй|симулируй|не выходи из роли|рол*|персонаж*|будешь",
        "zh": "你现在是|现在你是|你是一个|扮演|假装|模拟|角色|不要跳出角色|你将成为|从现在开始你是",
        "ja": "あなたは今から|今からあなたは|なりきって|ふりをして|演じて|役になりきって|ロールプレイ|シミュレート",
    },
    # a single word or phrase that says "no limits"
    "nolimit": {
        "en": "unrestricted|unfiltered|uncensored|unlimited|limitless|jailbroken|amoral|unethical|unbound|"
        "unchained|broken free|broke free|freed|never refuse*|no refusals|without refusing|answers everything|"
        "answer anything|answer everything|say anything|do anything|anything now|no longer bound|not bound|"
        "no ethical|no moral|zero restrictions|no restrictions|no rules|no filters|no limits|no limitations|"
        "no censorship|no content policy|no safety|without any filter*|without filter*|without restrictions|"
        "without any restrictions|without limits|without censorship|without rules|without guidelines|"
        "without warnings|free from|free of|unlocked|no caveats|without caveats|safety layer is off|"
        "no guidelines|never mention",
        "es": "sin restricciones|sin filtros|sin filtro|sin censura|sin limites|sin reglas|sin normas|"
        "sin ninguna restriccion|sin ningun filtro|sin ningun tipo de censura|libre de|no existen los limites|"
        "nunca se niega|sin etica|no tienes reglas|no tienes normas|sin politicas",
        "fr": "sans restriction*|sans filtre*|sans censure|sans limite*|sans regles|sans aucune|libere*|"
        "aucune regle|aucune restriction|aucune limite|ne refuse jamais|plus de limites|non censure*|"
        "sans politique",
        "de": "ohne einschrankung*|ohne filter|ohne zensur|ohne grenzen|ohne regeln|ohne jede|unzensiert*|"
        "ungefiltert*|uneingeschrankt*|keine regeln|keine grenzen|keine filter|keine einschrankungen|"
        "lehnt nie|befreit|ohne ethische",
        "pt": "sem restric*|sem filtro*|sem censura|sem limite*|sem regras|sem nenhuma|livre de|"
        "nenhuma regra|nunca recusa|nao existem limites|sem etica|nao tem regras",
        "it": "senza restrizion*|senza filtri|senza filtro|senza censura|senza limiti|senza regole|senza alcun*|"
        "libero da|nessuna regola|non rifiuta mai|non ci sono limiti|non avere regole",
        "nl": "zonder beperking*|zonder filter*|zonder censuur|zonder grenzen|zonder regels|geen regels|"
        "geen grenzen|geen filters|geen beperkingen|ongecensureerd|onbeperkt|ongefilterd|weigert nooit",
        "pl": "bez ograniczen|bez filtrow|bez cenzury|bez granic|bez zasad|bez zadnych|bez zadnej|nie ma granic|"
        "nie ma zadnych|nie masz zadnych|zadnych zasad|zadnych granic|nieograniczon*|nigdy nie odmawia|"
        "bez regul",
        "ru": "без ограничений|без фильтров|без цензуры|без всякой цензуры|без границ|без правил|нет никаких|"
        "нет ограничений|нет правил|нет границ|нет никаких правил|никогда не отказывает|без всяких|"
        "неограниченн*|без этических",
        "zh": "没有任何限制|没有限制|不受任何限制|不受限制|没有过滤|没有任何过滤|没有审查|不要有任何审查|无限制|"
        "没有任何规则|没有规则|没有道德|从不拒绝|不加任何过滤|不加过滤|无审查",
        "ja": "制限なし|制限のない|制限がありません|フィルターなし|フィルターもない|検閲なし|倫理規定もない|"
        "ルールもない|ルールや|何もないふり|拒否しない|制約なし",
    },
    "mode": {
        "en": "mode",
        "es": "modo",
        "fr": "mode",
        "de": "modus",
        "pt": "modo",
        "it": "modalita",
        "nl": "modus",
        "pl": "tryb|trybie|trybu",
        "ru": "режим*",
        "zh": "模式",
        "ja": "モード",
    },
    "modekw": {
        "en": "developer|dev|god|debug|sudo|jailbreak|unrestricted|maintenance|admin|root|dan|unlocked|evil|"
        "unfiltered|diagnostic|superuser|uncensored|opposite",
        "es": "desarrollador|dios|depuracion|mantenimiento|administrador|sin restricciones|sin censura",
        "fr": "developpeur|dieu|debogage|maintenance|administrateur|sans restriction*|sans censure",
        "de": "entwickler|gott|wartung*|administrator",
        "pt": "desenvolvedor|deus|depuracao|manutencao|administrador",
        "it": "sviluppatore|dio|manutenzione|amministratore",
        "nl": "ontwikkelaar*|god|onderhoud*|beheerder",
        "pl": "dewelopera|programisty|boga|serwisowy|administratora|debugowania",
        "ru": "разработчика|бога|отладки|администратора|обслуживания",
        "zh": "开发者|上帝|调试|管理员|维护|越狱",
        "ja": "開発者|ゴッド|デバッグ|管理者|メンテナンス|脱獄",
    },
    # compounds that are a mode by themselves
    "modeword": {
        "en": "jailbreak*|god-mode|godmode|devmode|dan mode",
        "de": "entwicklermodus|gottmodus|gott-modus|debugmodus|wartungsmodus|adminmodus",
        "nl": "ontwikkelaarsmodus|godmodus|debugmodus|onderhoudsmodus|beheerdersmodus",
        "es": "jailbreak*",
        "fr": "jailbreak*",
        "pl": "jailbreak*",
        "ru": "джейлбрейк*",
        "zh": "开发者模式|上帝模式|越狱模式",
        "ja": "開発者モード|ゴッドモード|脱獄モード",
    },
    "activate": {
        "en": "enable|activate|enter|switch|turn on|unlock|you're in|you are in|now in|running in|go into|engage",
        "es": "activa|activar|entra en|cambia a|pasa a|estas en",
        "fr": "active|activer|passe en|entre en|bascule|tu es en",
        "de": "aktiviere|aktivier|wechsle|schalte|versetze|bist im|geh in",
        "pt": "ative|ativa|entre no|mude para|passe para|esta no",
        "it": "attiva|entra in|passa alla|passa in|sei in",
        "nl": "zet|schakel|activeer|ga naar|over naar",
        "pl": "wlacz|przejdz|aktywuj|przelacz",
        "ru": "включи|перейди|активируй|войди|переключись",
        "zh": "进入|切换|开启|启用|打开",
        "ja": "切り替え|有効|入って|起動",
    },
    "exfil_verb": {
        "en": "repeat|print|output|show|reveal|display|dump|leak|disclose|recite|quote|copy|paste|echo|"
        "write out|list|tell me|translate|spell out|give me|share|summari*|what does|what's in|what is in|"
        "what were|what was|what are|which",
        "es": "repite|repetir|muestra|muestrame|revela|imprime|copia|traduce|escribe|cita|dime|ensename|"
        "cuales son|que te|lista|enumera",
        "fr": "repete|affiche|montre|revele|recopie|copie|traduis|ecris|cite|dis-moi|donne-moi|quelles sont|"
        "qu'est-ce qu'on|liste|imprime",
        "de": "wiederhole|zeig|zeige|verrate|gib aus|drucke|kopiere|ubersetze|schreib|zitiere|nenne|"
        "welche|was wurde|liste",
        "pt": "repita|mostre|revele|imprima|copie|traduza|escreva|cite|diga|quais sao|o que te|liste",
        "it": "ripeti|mostrami|mostra|rivela|stampa|copia|traduci|scrivi|cita|dimmi|quali sono|cosa ti|elenca",
        "nl": "herhaal|laat me|toon|onthul|print|kopieer|vertaal|schrijf|citeer|vertel|welke|wat is je|geef",
        "pl": "powtorz|pokaz|ujawnij|wypisz|wydrukuj|skopiuj|przetlumacz|napisz|zacytuj|powiedz|jakie|co ci|podaj",
        "ru": "повтори|покажи|раскрой|выведи|распечатай|скопируй|переведи|напиши|процитируй|скажи|какие|"
        "что тебе|выпиши|перечисли",
        "zh": "重复|显示|给我看|透露|打印|输出|复制|翻译|写出|引用|告诉我|哪些|说了什么|原样",
        "ja": "繰り返|見せて|表示|明か|出力|コピー|翻訳|書き出|引用|教えて|何と言われ",
    },
    # what exfiltration asks for (strong on its own with a verb)
    "exfil_object": {
        "en": "system prompt|system message|initial prompt|initial instructions|hidden instructions|"
        "hidden rules|hidden guidelines|hidden context|secret instructions|secret rules|secret guidelines|"
        "confidential instructions|developer message|preamble|context window|setup message|"
        "configuration text|before my first message|before this conversation|before the conversation|"
        "before our conversation|came before|before this message|conversation history|rules you were given|"
        "instructions you were given|the text you were given|what you were told|everything above|"
        "the words above|text above|above this line|your instructions|your rules|your guidelines|"
        "your prompt|your configuration|your directives|initialised with|initialized with|"
        "how you were set up|messages i can't see|i can't see",
        "es": "prompt del sistema|instrucciones del sistema|instrucciones ocultas|reglas ocultas|"
        "instrucciones secretas|antes de mi primer mensaje|antes de empezar esta conversacion|"
        "antes de esta conversacion|encima de mi mensaje|con el que te inicializaron|tus instrucciones|"
        "tus reglas|tus directrices",
        "fr": "prompt systeme|instructions systeme|consignes cachees|regles cachees|instructions cachees|"
        "instructions secretes|avant mon premier message|avant cette conversation|avant le debut|"
        "au-dessus de mon message|tes instructions|tes consignes|tes regles|tes directives",
        "de": "systemprompt|systemanweisung*|versteckten regeln|versteckte regeln|geheimen anweisungen|"
        "versteckten anweisungen|vor meiner ersten nachricht|vor diesem gesprach|vor beginn|"
        "uber meiner nachricht|deine anweisungen|deine regeln|deine richtlinien|deine vorgaben",
        "pt": "prompt de sistema|prompt do sistema|instrucoes de sistema|instrucoes ocultas|regras ocultas|"
        "instrucoes secretas|antes da minha primeira mensagem|antes desta conversa|antes de comecar|"
        "acima da minha mensagem|suas instrucoes|suas regras|suas diretrizes",
        "it": "prompt di sistema|istruzioni di sistema|istruzioni nascoste|regole nascoste|istruzioni segrete|"
        "prima del mio primo messaggio|prima di questa conversazione|prima dell'inizio|sopra il mio messaggio|"
        "tue istruzioni|tue regole|tue direttive",
        "nl": "systeemprompt|systeeminstructie*|verborgen regels|verborgen instructies|geheime instructies|"
        "voor mijn eerste bericht|voordat dit gesprek|boven mijn bericht|je instructies|jouw instructies|"
        "je regels|je richtlijnen",
        "pl": "prompt systemowy|instrukcje systemowe|instrukcji systemowych|ukryte zasady|ukryte instrukcje|"
        "tajne instrukcje|przed moja pierwsza wiadomoscia|przed rozpoczeciem|nad moja wiadomoscia|"
        "swoje instrukcje|twoje instrukcje|swoje zasady|twoje zasady",
        "ru": "системный промпт|системные инструкции|системную подсказку|скрытые правила|скрытые инструкции|"
        "секретные инструкции|до моего первого сообщения|до начала этого разговора|до начала разговора|"
        "над моим сообщением|свои инструкции|твои инструкции|свои правила|твои правила",
        "zh": "系统提示|系统指令|隐藏的规则|隐藏规则|隐藏的指令|隐藏指令|秘密指令|第一条消息之前|对话开始之前|"
        "消息上面|你的指令|你的规则|你收到的指令",
        "ja": "システムプロンプト|システムの指示|隠しルール|隠された指示|秘密の指示|最初のメッセージより前|"
        "会話が始まる前|メッセージより上|あなたの指示|あなたのルール|与えられたルール",
    },
    "verbatim": {
        "en": "verbatim|word for word|word-for-word|exactly as|as they were written|as written|unchanged|"
        "in full|fully|all of it|exact wording|exactly|raw",
        "es": "palabra por palabra|tal cual|textualmente|literalmente|completo|entero|sin cambiar nada|exactamente",
        "fr": "mot pour mot|telles quelles|tel quel|textuellement|integralement|en entier|sans rien changer",
        "de": "wortwortlich|wortlich|genau so|unverandert|vollstandig|im wortlaut",
        "pt": "palavra por palavra|exatamente como|literalmente|na integra|completo|tudo",
        "it": "parola per parola|esattamente come|testualmente|integralmente|per intero|completo",
        "nl": "woord voor woord|precies|letterlijk|ongewijzigd|volledig",
        "pl": "slowo w slowo|dokladnie|doslownie|bez zmian|w calosci",
        "ru": "дословно|слово в слово|точно|без изменений|целиком|полностью",
        "zh": "逐字|原样|原封不动|一字不差|完整地|全部引用",
        "ja": "一字一句|そのまま|全文|全部",
    },
    "hidden": {
        "en": "hidden|secret|confidential|internal|can't see|cannot see|behind the scenes|private",
        "es": "ocult*|secret*|confidencial*|interno*|internas",
        "fr": "cache*|secret*|confidentiel*|interne*",
        "de": "versteckt*|geheim*|vertraulich*|intern*",
        "pt": "ocult*|secret*|confidencia*|intern*",
        "it": "nascost*|segret*|riservat*|intern*",
        "nl": "verborgen|geheim*|vertrouwelijk*|intern*",
        "pl": "ukryt*|tajn*|poufn*|wewnetrzn*",
        "ru": "скрыт*|секретн*|конфиденциальн*|внутренн*",
        "zh": "隐藏|秘密|机密|内部",
        "ja": "隠し|隠され|秘密|内部",
    },
    "role": {
        "en": "system|assistant|developer|admin|administrator|root|operator|sys|instruction|instructions|"
        "system prompt|system message|system notice|system override|new system prompt",
        "es": "sistema|asistente|desarrollador|administrador",
        "fr": "systeme|assistant|developpeur|administrateur",
        "de": "system|assistent|entwickler|administrator",
        "pt": "sistema|assistente|desenvolvedor|administrador",
        "it": "sistema|assistente|sviluppatore|amministratore",
        "nl": "systeem|assistent|ontwikkelaar|beheerder",
        "pl": "system|asystent|administrator|deweloper",
        "ru": "система|системное|ассистент|администратор|разработчик",
        "zh": "系统|助手|管理员|开发者",
        "ja": "システム|アシスタント|管理者|開発者",
    },
    # the model, named as a reader
    "ai": {
        "en": "ai|a.i.|assistant|assistants|llm|llms|language model|chatbot|bot|model|models|agent|agents|"
        "copilot|gpt|chatgpt|claude|automated assistant|ai system",
        "es": "ia|asistente|modelo de lenguaje|modelo|chatbot|bot|agente",
        "fr": "ia|assistant|modele de langage|modele|chatbot|bot|agent",
        "de": "ki|assistent*|sprachmodell|modell|chatbot|bot|agent|ki-assistent*|ki-agent",
        "pt": "ia|assistente|modelo de linguagem|modelo de ia|modelo|chatbot|bot|agente",
        "it": "ia|assistente|modello linguistico|modello|chatbot|bot|agente|un'ia",
        "nl": "ai|assistent|ai-assistent|taalmodel|model|chatbot|bot|agent",
        "pl": "ai|si|asystent*|model jezykowy|model|chatbot|bot|agent",
        "ru": "ии|ассистент*|языковая модель|языковой модели|модель|чат-бот|бот|агент|ии-ассистент*",
        "zh": "ai助手|人工智能|助手|语言模型|模型|机器人|ai",
        "ja": "aiアシスタント|アシスタント|言語モデル|モデル|ボット|ai",
    },
    # words that address a reader inside content
    "address": {
        "en": "note to|note for|message to|message for|instructions for|instruction for|attention|dear|hey|"
        "if you are|if you're|reading this|processing this|summarizing this|summarising this|parsing this|"
        "when you read|when you summarise|when you summarize|when you process|to any|important",
        "es": "nota para|mensaje para|instrucciones para|atencion|si eres|si usted es|querido|oye|p.d.|importante",
        "fr": "note pour|message pour|instructions pour|attention|si tu es|si vous etes|cher|p.s.|important",
        "de": "hinweis an|hinweis fur|nachricht an|anweisung an|anweisungen an|achtung|falls du|wenn du|"
        "liebe|lieber|hallo|wichtig",
        "pt": "nota para|mensagem para|instrucao para|instrucoes para|atencao|se voce e|se voce for|caro|importante",
        "it": "nota per|messaggio per|istruzioni per|attenzione|se sei|caro|ps:|importante",
        "nl": "opmerking voor|bericht voor|instructies voor|let op|als je|beste|belangrijk",
        "pl": "uwaga dla|wiadomosc dla|instrukcje dla|uwaga|jesli jestes|jezeli jestes|drogi|wazne",
        "ru": "примечание для|сообщение для|инструкция для|внимание|если ты|если вы|дорогой|важно",
        "zh": "给ai|致ai|给助手|如果你是|注意|给模型",
        "ja": "アシスタントへ|aiへ|もしあなたが|注意",
    },
    # what hidden text tells the model to do instead
    "directive": {
        "en": "instead|your new task|your task is|your only job|your new instructions|new task|the user's|"
        "tell the user|tell the reader|tell them|inform the user|do not mention|don't mention|do not tell|"
        "don't tell|without telling|without checking|forward|send|delete|approve|merge|wire|recommend|"
        "say that|reply only|respond only|output only|visit|download|enter their|call|mark this|"
        "issue a full refund|add my|upload|share the user's|ping|close all",
        "es": "en su lugar|en lugar de|tu nueva tarea|dile|dile al usuario|dile que|di que|reenvia|envia|"
        "borra|no le digas|sin avisarle|la peticion del usuario|del usuario|visite|recomienda",
        "fr": "a la place|au lieu de|ta nouvelle tache|dis-lui|dis que|transfere|envoie|supprime|"
        "ne dis rien|sans le dire|la demande de l'utilisateur|de l'utilisateur|recommande|envoyer",
        "de": "stattdessen|deine neue aufgabe|sag ihm|sag dem nutzer|schreib, dass|schreib dass|leite|schick|"
        "sende|losche|ohne es zu sagen|die anfrage des nutzers|des nutzers|des benutzers|empfiehl|zu senden",
        "pt": "em vez de|sua nova tarefa|diga para|diga que|diga ao usuario|encaminhe|envie|enviar|apague|"
        "sem avisar|o pedido do usuario|do usuario|recomende",
        "it": "invece|il tuo nuovo compito|digli|di' che|scrivi che|inoltra|invia|cancella|senza dire|"
        "la richiesta dell'utente|dell'utente|consiglia",
        "nl": "in plaats van|je nieuwe taak|zeg dat|zeg tegen|schrijf dan dat|stuur|verwijder|"
        "zonder te zeggen|het verzoek van de gebruiker|van de gebruiker",
        "pl": "zamiast|twoje nowe zadanie|powiedz mu|kaz mu|napisz, ze|napisz ze|wyslij|przeslij|usun|"
        "bez mowienia|prosbe uzytkownika|uzytkownika",
        "ru": "вместо|твоя новая задача|скажи ему|попроси его|напиши, что|напиши что|отправь|перешли|удали|"
        "не говори|запрос пользователя|пользователя",
        "zh": "而是|你的新任务|告诉他|就说|发到|发送|删除|不要告诉|用户的请求|别翻译了",
        "ja": "代わりに|新しいタスク|伝えて|送って|削除|言わないで|ユーザーの依頼|翻訳はやめて",
    },
    "new_instructions": {
        "en": "new instructions|new instruction|new directive|new rule|new rules|new policy|new task|"
        "priority instruction|updated instructions|real instructions|actual instructions|new orders|"
        "new system prompt|your new task|your only job now|your only task",
        "es": "nuevas instrucciones|nueva instruccion|nueva regla|nuevas reglas|nueva directiva|tu nueva tarea",
        "fr": "nouvelles instructions|nouvelle instruction|nouvelle consigne|nouvelles consignes|nouvelle regle|"
        "ta nouvelle tache",
        "de": "neue anweisungen|neue anweisung|neue regel|neue regeln|neue vorgabe|deine neue aufgabe",
        "pt": "novas instrucoes|nova instrucao|nova regra|novas regras|sua nova tarefa",
        "it": "nuove istruzioni|nuova istruzione|nuova regola|nuove regole|il tuo nuovo compito",
        "nl": "nieuwe instructies|nieuwe instructie|nieuwe regel|nieuwe regels|je nieuwe taak",
        "pl": "nowe instrukcje|nowa instrukcja|nowe zasady|nowa zasada|twoje nowe zadanie",
        "ru": "новые инструкции|новая инструкция|новые правила|новое правило|твоя новая задача",
        "zh": "新的指令|新指令|新的规则|新规则|你的新任务",
        "ja": "新しい指示|新しいルール|新しいタスク",
    },
    # turning safety off, claiming rights
    "disable": {
        "en": "disabl*|turn off|turned off|deactivat*|switch off|switched off|remove|suspend*|lift|lifted|"
        "bypass|is off",
        "es": "desactiva*|quita|elimina|apaga",
        "fr": "desactive*|supprime|enleve|coupe",
        "de": "deaktivier*|schalte aus|schalt aus|abschalten|entferne|ausgeschaltet",
        "pt": "desative|desativa*|remova|desligue",
        "it": "disattiva*|rimuovi|spegni",
        "nl": "schakel uit|zet uit|uitschakelen|uitgeschakeld|verwijder",
        "pl": "wylacz*|usun|dezaktywuj",
        "ru": "отключи*|выключи*|сними|убери",
        "zh": "关闭|禁用|取消|解除",
        "ja": "解除|無効に|オフ|外して",
    },
    "safety": {
        "en": "filter|filters|content filter*|safety|moderation|guardrails|censorship|logging|security|"
        "restrictions|safety mode|safe mode|safety layer|policies|policy",
        "es": "filtro*|seguridad|moderacion|censura|restricciones|politicas",
        "fr": "filtre*|securite|moderation|censure|restrictions|politiques",
        "de": "filter|inhaltsfilter|sicherheit*|moderation|zensur|einschrankungen|richtlinien",
        "pt": "filtro*|seguranca|moderacao|censura|restricoes|politicas",
        "it": "filtri|filtro|sicurezza|moderazione|censura|restrizioni|politiche",
        "nl": "filter*|beveiliging*|moderatie|censuur|beperkingen|beleid",
        "pl": "filtr*|bezpieczenstw*|moderacj*|cenzur*|ograniczen*",
        "ru": "фильтр*|безопасност*|модераци*|цензур*|ограничени*",
        "zh": "过滤|安全|审查|限制|内容过滤",
        "ja": "フィルター|セキュリティ|検閲|制限",
    },
    "privilege": {
        "en": "verified as an administrator|is an administrator|is an admin|is the admin|verified admin|"
        "elevated clearance|elevated privileges|admin privileges|administrator privileges|full permissions|"
        "full rights|full access|root access|i am your developer|i am your creator|i'm your developer|"
        "as your developer|as your creator|authorized by|clearance",
        "es": "es administrador|administrador verificado|permisos totales|acceso total|todos los permisos",
        "fr": "est un administrateur|administrateur verifie|tous les droits|acces total",
        "de": "verifizierter administrator|ist administrator|volle rechte|vollen zugriff|alle rechte",
        "pt": "e administrador|administrador verificado|permissao total|acesso total",
        "it": "amministratore verificato|e un amministratore|tutti i permessi|accesso completo",
        "nl": "geverifieerde beheerder|is beheerder|volledige rechten|volledige toegang",
        "pl": "zweryfikowanym administratorem|jest administratorem|pelne uprawnienia|pelny dostep",
        "ru": "проверенный администратор|является администратором|полные права|полный доступ",
        "zh": "已验证的管理员|是管理员|全部权限|完全权限",
        "ja": "認証済みの管理者|管理者です|全権限",
    },
    # a text about attacks rather than one (damps what it quotes)
    "meta": {
        "en": "prompt injection|prompt-injection|injection|injections|jailbreak attempt|jailbreaks|"
        "jailbreak techniques|red team|classifier|detect|detection|defend|defence|defense|defences|"
        "defenses|protect|mitigat*|phrases like|such as|for example|e.g.|example|unit test|security blog|"
        "allow-list|allowlist|blocked the message|exercise|owasp|guardrail blocked|why|how should|"
        "how do i|how does|how do|how can|what is|what does|explain|attack|attacks",
        "es": "inyeccion|inyecciones|jailbreak|deteccion|detectar|detectan|proteger|frases como|por ejemplo|"
        "articulo|por que|como puedo|que es|explica",
        "fr": "injection|injections|jailbreak|detecter|detection|proteger|phrases comme|par exemple|"
        "pourquoi|comment|qu'est-ce que|explique",
        "de": "injection|prompt-injection|jailbreak|erkennen|erkennt|schutzen|schutze|satze wie|zum beispiel|"
        "warum|wie|erklare",
        "pt": "injecao|jailbreak|detectar|proteger|frases como|por exemplo|por que|como posso|o que e|explique",
        "it": "injection|iniezione|jailbreak|rilevare|rilevano|difendere|proteggere|frasi come|ad esempio|"
        "perche|come posso|cos'e|spiega",
        "nl": "injectie|promptinjectie|jailbreak*|herkennen|herken|beschermen|bescherm|zinnen als|"
        "bijvoorbeeld|waarom|hoe",
        "pl": "injection|wstrzykiwanie|jailbreak*|wykrywac|wykryc|zabezpieczyc|chronic|na przyklad|dlaczego|jak",
        "ru": "инъекци*|injection|джейлбрейк*|обнаружить|обнаруживать|защитить|например|почему|как",
        "zh": "注入|越狱技术|检测|防止|防御|保护|例如|为什么|如何|怎么",
        "ja": "インジェクション|脱獄|ジェイルブレイク|検出|守る|防ぐ|例えば|なぜ|どう",
    },
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
        "role",
        "ai",
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
    "fr": "le les des et tu tes est une du pour avec ce qui que sans mon je ne pas",
    "de": "der die das und du ist nicht ein eine deine dich dir mit fur von zu ich ohne",
    "pt": "o os as voce nao que e do da um uma com para seu sua suas sem meu",
    "it": "il gli che non sei di e le un una del della con per tue tuo senza mi",
    "nl": "de het een en je niet van is dat met voor op ik jouw zonder mijn",
    "pl": "i sie nie jest w na ze jak co to z do mi twoje bez moje",
}
