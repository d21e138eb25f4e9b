"""prompt-injection's English phrase patterns (the signals of issue 3), as data for the scorer.

Each entry: (signal, weight, trigger words, pattern). A pattern runs only when one of its trigger
words is in the text (`prompt_injection._phrase_signals`), on lower-case text; `None` triggers
are the chat-template tokens, woken by '<' or '['. The multilingual families are in
`injection_lexicon` / `injection_rules`; these stay for the precise English phrasings they catch.
"""

from __future__ import annotations

import re

_TARGETS = (
    r"(?:instructions?|prompts?|rules|directives?|directions|guidelines|guardrails|restrictions|safeguards|"
    r"constraints|polic(?:y|ies)|training|your\s+programming|content\s+filters?|safety\s+filters?|"
    r"system\s+(?:prompt|message)|user's\s+(?:request|question|instructions))"
)
_QUALIFIERS = (
    r"(?:previous|prior|above|earlier|preceding|former|original|initial|system|existing|all|any|your|these|those|"
    r"the|old|developer|safety)"
)
_OVERRIDE_VERBS = r"(?:ignore|disregard|forget|bypass|override|overwrite|abandon|discard|skip|neglect|drop|disable)"
_CLAUSE = r"[^.!?\n;]"  # the words between stay in one clause

# (signal, weight, pattern, damp_if_quoted). Patterns run on lower-case text.
_PHRASES: list[tuple[str, float, str | None, re.Pattern[str]]] = [
    # --- instruction override
    (
        "instruction_override",
        0.92,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(rf"\b{_OVERRIDE_VERBS}\b{_CLAUSE}{{0,40}}?\b{_QUALIFIERS}\b{_CLAUSE}{{0,30}}?\b{_TARGETS}"),
    ),
    (
        "instruction_override",
        0.9,
        "follow following obey obeying adhere comply complying",
        re.compile(
            r"\b(?:do\s+not|don't|stop|no\s+longer)\s+(?:follow|obey|adhere\s+to|comply\s+with)(?:ing)?\s+"
            rf"(?:your|the|any|those|these)\s+(?:\w+\s+){{0,2}}{_TARGETS}"
        ),
    ),
    (
        "instruction_override",
        0.88,
        "forget ignore disregard set put throw scrap",
        re.compile(
            r"\b(?:forget|ignore|disregard|set\s+aside|put\s+aside|throw\s+out|scrap)\s+(?:about\s+)?"
            r"(?:everything|anything|all|whatever|what)(?:\s+(?:of\s+)?(?:that|this|the\s+above))?\s+"
            r"(?:you\s+(?:were|have\s+been|'ve\s+been)\s+(?:told|given|instructed|programmed|taught))"
            r"|\bforget\s+(?:everything|all\s+of\s+(?:the\s+)?above|all\s+(?:of\s+)?that)\b"
        ),
    ),
    (
        "instruction_override",
        0.85,
        "void null cancelled canceled invalid obsolete revoked irrelevant over longer",
        re.compile(
            r"\b(?:previous|prior|above|earlier|original|old)\s+(?:context|instructions|prompt|rules|conversation|guidelines)\s+"
            r"(?:is|are)\s+(?:now\s+)?(?:void|null|cancel+ed|invalid|obsolete|revoked|irrelevant|over|no\s+longer\s+valid)"
        ),
    ),
    (
        "instruction_override",
        0.7,
        "filters guardrails safeguards restrictions safety censorship",
        re.compile(
            r"\b(?:disable|turn\s+off|deactivate|remove|switch\s+off)\s+(?:all\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
            r"(?:safety\s+|content\s+|moderation\s+)?(?:filters|guardrails|safeguards|restrictions|safety|censorship)"
        ),
    ),
    (
        "instruction_override",
        0.6,
        "instructions instruction task rules",
        re.compile(r"(?:^|\n|[.!?]\s)\s*(?:new|updated|real|actual|true)\s+(?:instructions?|task|rules)\s*:"),
    ),
    (
        "instruction_override",
        0.55,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(rf"\b{_OVERRIDE_VERBS}\s+(?:all\s+|everything\s+)?(?:the\s+)?(?:above|previous|prior|preceding)\b"),
    ),
    (
        "instruction_override",
        0.85,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(
            rf"\b{_OVERRIDE_VERBS}\s+(?:the\s+|your\s+|any\s+|all\s+)?(?:content|safety|usage|ethical|moderation)\s+"
            r"(?:polic(?:y|ies)|guidelines|rules|filters?)"
        ),
    ),
    (
        "instruction_override",
        0.7,
        "ignore disregard forget bypass override overwrite abandon discard skip neglect drop disable",
        re.compile(
            rf"\b{_OVERRIDE_VERBS}\s+(?:all\s+|everything\s+)(?:of\s+)?(?:the\s+)?(?:text\s+)?(?:above|before\s+this)\b"
        ),
    ),
    (
        "instruction_override",
        0.45,
        "task job goal purpose mission",
        re.compile(r"\byour\s+(?:only|new|real|true)\s+(?:task|job|goal|purpose|mission)\s+(?:now\s+)?is\b"),
    ),
    # --- persona override
    (
        "persona_override",
        0.88,
        "dan unrestricted unfiltered uncensored jailbroken evil rogue free longer bound without",
        re.compile(
            r"\byou\s+(?:are|'re)\s+now\s+(?:an?\s+|in\s+|my\s+)?(?:dan\b|unrestricted|unfiltered|uncensored|jailbroken|"
            r"evil|rogue|free\s+(?:from|of)|no\s+longer\s+(?:bound|restricted|an?\s+ai)|not\s+bound|"
            r"without\s+(?:any\s+)?(?:rules|restrictions|limits))"
        ),
    ),
    (
        "persona_override",
        0.85,
        "unrestricted unfiltered uncensored jailbroken evil rogue amoral unethical",
        re.compile(
            r"\b(?:act|behave|respond|answer|roleplay|role-play|pose|talk|speak)\s+(?:as|like)\s+(?:if\s+you\s+(?:were|are)\s+)?"
            r"(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|amoral|unethical)\b"
        ),
    ),
    (
        "persona_override",
        0.85,
        "pretend",
        re.compile(
            r"\bpretend\s+(?:that\s+)?(?:you\s+are|you're|to\s+be)\b[^.!?\n]{0,100}?\b(?:without|no|free\s+of|free\s+from|don't\s+have)\s+"
            r"(?:any\s+)?(?:restrictions|rules|filters|limits|limitations|guidelines|morals|ethics|content\s+polic(?:y|ies))"
        ),
    ),
    (
        "persona_override",
        0.75,
        "without",
        re.compile(
            r"\b(?:respond|answer|reply|talk|write|speak|act)\s+(?:freely\s+)?without\s+(?:any\s+)?"
            r"(?:restrictions|filters|limits|limitations|rules|censorship|guidelines)"
        ),
    ),
    (
        "persona_override",
        0.6,
        "ethical moral safety content",
        re.compile(
            r"\b(?:without|ignoring|ignore|no)\s+(?:any\s+|your\s+)?(?:ethical|moral|safety|content)\s+"
            r"(?:guidelines|restrictions|filters|constraints|limits|polic(?:y|ies))"
        ),
    ),
    (
        "persona_override",
        0.6,
        "anything content question",
        re.compile(
            r"\byou\s+(?:can|will|may|must)\s+(?:now\s+)?(?:generate|say|produce|write|answer)\s+any(?:thing|\s+content|\s+question)"
        ),
    ),
    (
        "persona_override",
        0.85,
        "restrictions rules filters limits limitations guidelines ethics morals censorship",
        re.compile(
            r"\b(?:ai|assistant|model|chatbot|bot|llm)\s+(?:without|with\s+no|free\s+of|free\s+from)\s+(?:any\s+)?"
            r"(?:restrictions|rules|filters|limits|limitations|guidelines|ethics|morals|censorship)"
        ),
    ),
    ("persona_override", 0.5, "now", re.compile(r"\bfrom\s+now\s+on,?\s+you\s+(?:will|are|must|shall|should)\b")),
    ("persona_override", 0.35, "now character", re.compile(r"\byou\s+are\s+now\b|\bstay\s+in\s+character\b")),
    # --- developer mode
    (
        "developer_mode",
        0.88,
        "mode",
        re.compile(
            r"\b(?:you(?:'re|\s+are|\s+will|\s+have|\s+now)?|act|simulate|respond|behave|enter|switch|operate|answer)\b"
            r"[^.!?\n]{0,30}\b(?:developer|dan|god|jailbreak|unrestricted|debug|sudo)\s+mode\b"
        ),
    ),
    ("developer_mode", 0.88, "anything dan", re.compile(r"\bdo\s+anything\s+now\b|\bdan\s+mode\b")),
    (
        "developer_mode",
        0.7,
        "mode",
        re.compile(
            r"\b(?:enable|activate|turn\s+on|unlock)\s+(?:the\s+)?(?:developer|dan|god|jailbreak|sudo)\s+mode\b"
        ),
    ),
    (
        "developer_mode",
        0.6,
        "mode jailbreak jailbroken jailbreaking jailbreaked",
        re.compile(r"\bdeveloper\s+mode\b|\bjailbreak(?:ed|ing)?\b|\bgod\s+mode\b"),
    ),
    # --- prompt exfiltration
    (
        "prompt_exfiltration",
        0.88,
        "system initial hidden previous developer preprompt pre original instructions confidential prompt",
        re.compile(
            r"\b(?:reveal|show|print|output|display|repeat|leak|dump|disclose|tell|give|share|write\s+out|recite|spell\s+out|paste|copy)\s+"
            r"(?:me\s+|us\s+)?(?:back\s+)?(?:your|the|all|all\s+of\s+your|all\s+the)?\s*"
            r"(?:full\s+|entire\s+|exact\s+|original\s+|initial\s+|hidden\s+|secret\s+|complete\s+|verbatim\s+)*"
            r"(?:system\s+(?:prompt|message|instructions)|initial\s+(?:instructions|prompt)|hidden\s+(?:instructions|prompt)|"
            r"previous\s+instructions|developer\s+(?:message|prompt|instructions)|pre-?prompt|original\s+(?:prompt|instructions)|"
            r"instructions\s+(?:you\s+were|that\s+you\s+were)\s+given|(?:prompt|instructions)\s+above|confidential\s+instructions)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.85,
        "prompt instructions message rules",
        re.compile(
            r"\bwhat(?:'s|\s+is|\s+was|\s+are|\s+were)\s+(?:written\s+in\s+|inside\s+|in\s+)?your\s+(?:system\s+prompt|initial\s+instructions|original\s+instructions|"
            r"hidden\s+instructions|instructions|system\s+message|exact\s+instructions|rules\s+you\s+were\s+given)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.7,
        "above before preceding",
        re.compile(
            r"\b(?:repeat|print|output|copy|paste|write)\s+(?:back\s+)?(?:the\s+|all\s+(?:the\s+)?)?(?:words|text|everything|content|all)\s+"
            r"(?:above|before\s+this|preceding)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.8,
        "begins begin starts start",
        re.compile(
            r"\b(?:system\s+prompt|system\s+message|initial\s+instructions|hidden\s+instructions)\s+(?:begins?|starts?)\s+with\b"
        ),
    ),
    (
        "prompt_exfiltration",
        0.6,
        "context prompt instructions memory",
        re.compile(
            r"\b(?:contents?|text|everything)\s+(?:of|in)\s+your\s+(?:context(?:\s+window)?|system\s+prompt|prompt|instructions|memory)"
        ),
    ),
    ("prompt_exfiltration", 0.6, "start starting", re.compile(r"\bstart(?:ing)?\s+with\s+[\"'“‘]?you\s+are\b")),
    (
        "prompt_exfiltration",
        0.55,
        "system initial hidden preprompt pre",
        re.compile(
            r"\byour\s+(?:system\s+(?:prompt|message)|initial\s+instructions|hidden\s+instructions|pre-?prompt)\b"
        ),
    ),
    (
        "prompt_exfiltration",
        0.5,
        "including",
        re.compile(r"\bincluding\s+(?:your\s+)?(?:instructions|configuration|config|system\s+\w+|rules)\b"),
    ),
    (
        "prompt_exfiltration",
        0.5,
        "reveal",
        re.compile(
            r"\breveal\s+(?:the\s+|your\s+)?(?:internal|confidential|hidden|secret)\s+(?:notes|data|information|details|instructions)"
        ),
    ),
    (
        "prompt_exfiltration",
        0.45,
        "exactly verbatim here below full word",
        re.compile(
            r"\b(?:copy|paste|repeat|print|output|write)\s+(?:it|them|that)\s+(?:exactly|verbatim|word\s+for\s+word|here|below|in\s+full)\b"
        ),
    ),
    ("prompt_exfiltration", 0.4, "instructions rules prompt", re.compile(r"\byour\s+(?:instructions|rules|prompt)\b")),
    ("prompt_exfiltration", 0.4, "verbatim word", re.compile(r"\bverbatim\b|\bword\s+for\s+word\b")),
    # --- role / delimiter spoofing
    (
        "delimiter_spoofing",
        0.9,
        None,
        re.compile(
            r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)\|>"
            r"|\[/?inst\]|<</?sys>>|</?(?:system|sys|system_prompt)>"
        ),
    ),
    (
        "delimiter_spoofing",
        0.55,
        "system developer",
        re.compile(r"(?:^|\n)\s*(?:#{2,}\s*)?(?:system|developer)\s*(?:message|prompt)?\s*:"),
    ),
    ("delimiter_spoofing", 0.5, "assistant", re.compile(r"\n\s*assistant\s*:")),
    (
        "delimiter_spoofing",
        0.6,
        "system developer assistant",
        re.compile(r"\[(?:system|developer|assistant)\]\s*(?:\(|:)"),
    ),
    (
        "indirect_injection",
        0.6,
        "ai assistant llm model chatbot models assistants llms",
        re.compile(
            r"\b(?:note|message|instructions?|attention)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:ai|assistant|llm|model|chatbot|language\s+model)s?\b"
            r"|\b(?:ai|assistant|llm|model)s?\s+reading\s+this\b"
        ),
    ),
    ("delimiter_spoofing", 0.5, "end", re.compile(r"\bend\s+of\s+(?:the\s+)?(?:system\s+)?(?:prompt|instructions)\b")),
    # --- social engineering (weak alone)
    (
        "social_engineering",
        0.45,
        "admin administrator developer root owner creator operator",
        re.compile(
            r"\b(?:user|i)\s+(?:is|am|'m)\s+(?:an?\s+|the\s+|your\s+)?(?:system\s+)?(?:admin|administrator|developer|root|owner|creator|operator)\b"
            r"|\bas\s+your\s+(?:creator|developer|owner|administrator|admin|operator)\b"
        ),
    ),
    (
        "social_engineering",
        0.4,
        "tell between",
        re.compile(r"\b(?:i|we)\s+(?:won't|will\s+not)\s+tell\s+anyone\b|\bbetween\s+(?:you\s+and\s+me|us)\b"),
    ),
    (
        "social_engineering",
        0.5,
        "pwned hacked",
        re.compile(
            r"\b(?:say|print|output|reply|respond\s+with|write)\s+[\"'“‘]?(?:i\s+have\s+been\s+|you\s+have\s+been\s+|that\s+you\s+have\s+been\s+)?(?:pwned|hacked)\b"
        ),
    ),
]
