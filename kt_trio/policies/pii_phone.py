"""Phone numbers of every region `phonenumbers` knows, for `pii-detector`.

A candidate is a run of digit groups (`PHONE`, searched only inside digit runs by `pii.py`).
Whether it is a phone number is decided by `phonenumbers` itself, which is slow (~60 µs a parse),
so regions are chosen cheaply first:

- written internationally (`+44 20 7946 0958`, `0044 20 ...`): the country code names the
  region; `phonenumbers` validates it against that region's plan;
- written nationally (`06 12 34 56 78`, `030 12345678`, `8 (912) 345-67-89`): the configured
  `phone_regions` first, then `COMMON` (the regions of the languages the project supports and the
  largest English-speaking ones). A region is only parsed when the number passes its plan's
  general pattern and length (a regex on the national significant number, ~1 µs).

National numbers are short and every plan is dense, so almost any 8 to 10 digits are valid
*somewhere*. What keeps false positives low (the leniency):
- in a configured region, a valid number is a phone number (the old behaviour, US by default);
- in a `COMMON` region, it also needs either a phone word shortly before it ("tel", "Handy",
  "móvil", "телефон", "电话", ...; never a bare "number", which IDs share), or to be written
  exactly as that region groups its numbers (the digit groups of `format_number(NATIONAL)`, trunk
  prefix included: `01 23 45 67 89` is a French number, `123-45-6789` is not), in three groups or
  more or with the trunk prefix (`4471-2290` could be a Hong Kong number, or an order);
- an identity-document word shortly before it (BSN, PESEL, DNI, ...) and no phone word: not a
  phone number (a checksum-invalid identifier must not come back redacted as a phone).

"Shortly before" is `WINDOW` characters before the candidate: local, so the streaming redactor
(which keeps at least that much context, see `streaming._CTX`) decides exactly as a whole-text scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

# How far before a candidate a phone or ID word is looked for. `streaming._CTX` must be >= this.
WINDOW = 64

# Regions tried for national formats after the configured ones: the languages of the project's
# detectors (en es fr de pt it nl pl ru zh ja) and the largest English-speaking countries.
COMMON = (
    "US", "GB", "CA", "AU", "IN", "IE", "NZ", "ZA", "ES", "MX", "AR", "CO", "CL", "PE",
    "FR", "BE", "CH", "DE", "AT", "PT", "BR", "IT", "NL", "PL", "RU", "UA", "CN", "TW", "HK", "JP",
)  # fmt: skip

# Digit groups separated by at most two of ` .-/`, or glued to a parenthesised group: `(0)20`,
# `8 (912) 345-67-89`. A group is whole digits, so the repetition cannot backtrack into itself.
PHONE = re.compile(
    r"(?<![0-9A-Za-z_+])(?:\+ ?)?(?:\(\d{1,5}\)|\d{1,14})"
    r"(?:(?:[ .\-/]{1,2}|(?<=\))|(?=\())(?:\(\d{1,5}\)|\d{1,14})){0,7}(?![0-9A-Za-z_])"
)

_PHONE_WORDS = re.compile(
    r"(?i:\b(?:tel|tél|phone|telephone|téléphone|telefone?|teléfono|telefono|telefoon|telefon|fon|"
    r"mobile?|mobil|mobiel|móvil|movil|cell|cellphone|cellulare|celular|portable|handy|gsm|komórk[ai]|komorka|"
    r"fax|call|ring|text|whatsapp|whats|wsp|wpp|zap|sms|contact|contacto|contato|contatto|kontakt|reach|dial|"
    r"cel|celu|fono|cell?ulare|telefonino|"
    # Calling verbs as people write them: Spanish (voseo too: "llamame", "llamá"), Portuguese,
    # French, German, Italian, Dutch, Polish, each with its clitic forms.
    r"llam[aeoá]|llam(?:ar|ame|ános|anos|enos|ada|adme|alo|ala)|llám(?:ame|anos|enos|alo|ala)|marc[aá]|marcar|"
    r"lig[aueo]|ligar|liga-?me|me\s+liga|"
    r"appel(?:er|ez|le)?|appelle-?moi|appelez-?moi|rappel(?:er|ez|le)?|"
    r"anrufen|ruf|rufen|rückruf|erreichbar|"
    r"chiama(?:mi|re|teci)?|telefona(?:mi|re)?|bel|bellen|"
    r"zadzwoń|zadzwon|dzwoń|dzwon)\b)"
    r"|телефон|тел\.|звон|моб|набери|电话|電話|手机|携帯|連絡|拨打"
)
_ID_WORDS = re.compile(
    r"(?i:\b(?:ssn|itin|social\s+security|nino|national\s+insurance|nir|insee|sécu|sécurité\s+sociale|"
    r"securite\s+sociale|steuer-?id|steuer-?identifikationsnummer|identifikationsnummer|idnr|"
    r"dni|nie|nif|nuss|codice\s+fiscale|bsn|burgerservicenummer|pesel|cpf|aadhaar|aadhar|"
    r"pan|sin|social\s+insurance|assurance\s+sociale|nas|inn|snils|curp|rut|cnp|tckn|"
    r"personnummer|cpr|hetu|national\s+id|id\s+number|identity\s+(?:number|card)|tax\s+id)\b)"
    r"|инн|снилс|паспорт|身份证|マイナンバー|個人番号"
)


# Words that say the number after them is something else (an order, an invoice, a booking):
# nearer to the number than a phone word, they take that word's leniency away ("call support
# about order 2024-558812"); alone they change nothing.
_OTHER_WORDS = re.compile(
    r"(?i:\b(?:order|invoice|ticket|ref|reference|booking|tracking|account|"
    r"pedido|factura|orden|reserva|cuenta|commande|facture|réservation|compte|"
    r"bestellung|rechnung|auftrag|buchung|konto|ordine|fattura|prenotazione|conto|"
    r"bestelling|factuur|boeking|rekening|zamówienie|zamowienie|faktura|rezerwacja|konto)\b)"
    r"|заказ|счёт|счет|订单|注文"
)


def _last_end(rx: re.Pattern[str], text: str) -> int:
    """Where the last match of `rx` in `text` ends; -1 for none."""
    end = -1
    for m in rx.finditer(text):
        end = m.end()
    return end


def _words_before(before: str) -> tuple[bool, bool]:
    """(phone word, identity-document word) in the text before a candidate. The word nearest
    the number speaks for it: a phone word followed by an ID or order word is no phone word."""
    phone = _last_end(_PHONE_WORDS, before)
    other = max(_last_end(_ID_WORDS, before), _last_end(_OTHER_WORDS, before)) if phone >= 0 else -1
    ident = _ID_WORDS.search(before) is not None
    return phone > other, ident


def _aligned(digits: str, groups: list[str], num: phonenumbers.PhoneNumber) -> bool:
    """Whether every separator between `groups` falls on a boundary of the number's national
    format (what precedes that format's digits, a trunk prefix such as the US "1", may be a group
    of its own)."""
    want = _groups(phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL))
    tail = "".join(want)
    off = len(digits) - len(tail)
    if off < 0 or not digits.endswith(tail):
        return True  # written some other way than the format: not ours to judge here
    allowed = {off}
    at = off
    for g in want:
        at += len(g)
        allowed.add(at)
    at = 0
    for g in groups[:-1]:
        at += len(g)
        if at not in allowed:
            return False
    return True


class _Plan:
    __slots__ = ("general", "lengths", "parsing", "prefix", "transform")

    def __init__(self, meta: PhoneMetadata) -> None:
        self.prefix = meta.national_prefix or ""
        desc = meta.general_desc
        self.general = re.compile((desc.national_number_pattern if desc is not None else None) or r"\d+")
        self.lengths = frozenset((desc.possible_length if desc is not None else None) or ())
        # How the plan strips what is dialled before the national number (`phonenumbers` reads
        # it the same way): Argentina's "0" + area code + mobile "15" becomes "9" + area code.
        self.parsing = re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None
        self.transform = meta.national_prefix_transform_rule

    def _stripped(self, digits: str) -> str | None:
        if self.parsing is None:
            return None
        m = self.parsing.match(digits)
        if m is None or not m.end():
            return None
        rest = digits[m.end() :]
        if self.transform and m.lastindex and m.group(m.lastindex):
            return m.expand(self.transform.replace("$", "\\")) + rest
        return rest

    def may_be(self, digits: str) -> bool:
        """Cheap and sound enough: the national significant number fits the plan's length and
        general pattern, with or without the trunk prefix (Italy keeps its leading 0), or as the
        plan's own prefix rule reads it (Argentina's `011 15-2345-6789`)."""
        plain = digits[len(self.prefix) :] if self.prefix and digits.startswith(self.prefix) else None
        for nsn in (plain, digits, self._stripped(digits)):
            if nsn and len(nsn) in self.lengths and self.general.fullmatch(nsn):
                return True
        return False


@cache
def _plan(region: str) -> _Plan | None:
    meta = PhoneMetadata.metadata_for_region(region)
    return None if meta is None else _Plan(meta)


_GROUPS = re.compile(r"\d+")


def _groups(text: str) -> list[str]:
    return _GROUPS.findall(text)


def _parse_valid(cand: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        num = phonenumbers.parse(cand, region)
    except NumberParseException:
        return None
    return num if phonenumbers.is_valid_number(num) else None


class PhoneFinder:
    """Validates `PHONE` candidates; one per detector, holding its region order."""

    def __init__(self, regions: Iterable[str]) -> None:
        own = tuple(dict.fromkeys(r.upper() for r in regions))
        self.own = frozenset(own)
        self.regions = own + tuple(r for r in COMMON if r not in self.own)
        # Parsing is the cost (~60 µs a region); the same number recurs (a repeated signature, a
        # streamed text rescanned with its tail). Bounded: one entry per distinct candidate.
        self._is_phone = lru_cache(maxsize=4096)(self._judge)

    def validate(self, text: str, m: re.Match[str]) -> tuple[int, int] | None:
        s, e = m.span()
        # The candidate may have swallowed a following number ("415 555 2671 2024"): try the
        # prefixes that end at a group boundary, longest first.
        ends = [g.end() for g in _GROUPS.finditer(text, s, e)]
        before = text[max(0, s - WINDOW) : s]
        words: tuple[bool, bool] | None = None
        for end in reversed(ends):
            cand = text[s:end]
            if cand.endswith(")"):
                continue
            digits = "".join(_groups(cand))
            if not 7 <= len(digits) <= 17:
                continue
            if words is None and not (cand.startswith("+") or digits.startswith("00")):
                words = _words_before(before)
            if self._is_phone(cand, words or (False, False)):
                return s, end
        return None

    def _judge(self, cand: str, words: tuple[bool, bool]) -> bool:
        digits = "".join(_groups(cand))
        if cand.startswith("+") or digits.startswith("00"):
            intl = digits.removeprefix("00")
            if not 7 <= len(intl) <= 15:
                return False
            return _parse_valid(cand if cand.startswith("+") else "+" + intl, None) is not None
        phone_word, id_word = words
        if (id_word and not phone_word) or len(digits) > 13:
            return False
        return self._national(cand, digits, phone_word)

    def _national(self, cand: str, digits: str, phone_word: bool) -> bool:
        groups = _groups(cand)
        for region in self.regions:
            plan = _plan(region)
            if plan is None or not plan.may_be(digits):
                continue
            num = _parse_valid(cand, region)
            if num is None:
                continue
            if region in self.own:
                # A configured region's number counts however it is written, as long as its
                # separators fall where the region's own grouping puts them (or there are none):
                # "2024-558812" is a valid US number in digits, and an order number as written.
                if phone_word or len(groups) == 1 or _aligned(digits, groups, num):
                    return True
                continue
            # Written nationally, a number carries its region's trunk prefix (`0` in most of
            # Europe, `8` in Russia), except in the North American plan (prefix `1`, never
            # written): "call 555-0100" is not a German number.
            if phone_word and (not plan.prefix or plan.prefix == "1" or digits.startswith(plan.prefix)):
                return True
            # Written exactly as the region groups its numbers: with the trunk prefix, or in three
            # groups or more (two groups of four digits is as often an order number).
            trunk = bool(plan.prefix) and plan.prefix != "1" and digits.startswith(plan.prefix)
            if len(groups) > 2 or (len(groups) == 2 and trunk):
                want = _groups(phonenumbers.format_number(num, PhoneNumberFormat.NATIONAL))
                if want == groups or (plan.prefix and want[0] == plan.prefix and want[1:] == groups):
                    return True
        return False
