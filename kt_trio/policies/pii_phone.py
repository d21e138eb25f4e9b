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
    r"fax|call|ring|text|whatsapp|sms|contact|reach|dial|"
    r"appel(?:er|ez|le)?|llam[ae]|llámame|ligue|ligar|anrufen|ruf|chiama(?:mi)?|bel|zadzwoń|dzwoń)\b)"
    r"|телефон|тел\.|звон|моб|电话|電話|手机|携帯|連絡|拨打"
)
_ID_WORDS = re.compile(
    r"(?i:\b(?:ssn|itin|social\s+security|nino|national\s+insurance|nir|insee|sécu|sécurité\s+sociale|"
    r"securite\s+sociale|steuer-?id|steuer-?identifikationsnummer|identifikationsnummer|idnr|"
    r"dni|nie|nif|nuss|codice\s+fiscale|bsn|burgerservicenummer|pesel|cpf|aadhaar|aadhar|"
    r"pan|sin|social\s+insurance|assurance\s+sociale|nas|inn|snils|curp|rut|cnp|tckn|"
    r"personnummer|cpr|hetu|national\s+id|id\s+number|identity\s+(?:number|card)|tax\s+id)\b)"
    r"|инн|снилс|паспорт|身份证|マイナンバー|個人番号"
)


class _Plan:
    __slots__ = ("general", "lengths", "prefix")

    def __init__(self, meta: PhoneMetadata) -> None:
        self.prefix = meta.national_prefix or ""
        desc = meta.general_desc
        self.general = re.compile((desc.national_number_pattern if desc is not None else None) or r"\d+")
        self.lengths = frozenset((desc.possible_length if desc is not None else None) or ())

    def may_be(self, digits: str) -> bool:
        """Cheap and sound enough: the national significant number fits the plan's length and
        general pattern, with or without the trunk prefix (Italy keeps its leading 0)."""
        for nsn in (digits[len(self.prefix) :] if self.prefix and digits.startswith(self.prefix) else None, digits):
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
                words = (_PHONE_WORDS.search(before) is not None, _ID_WORDS.search(before) is not None)
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
                return True
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
