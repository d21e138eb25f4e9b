"""National identifiers for `pii-detector` (kind `NATIONAL_ID`), validated by python-stdnum.

A candidate is a run of upper-case letters and digits joined by single ` .-/` (`ID_RUN`); every
stretch of its tokens whose compact form has an identifier's length and shape is offered to that
identifier's stdnum validator (checksum, dates, ranges). A stretch whose checksum fails is never
redacted, and is not then taken for a phone number (see `pii_phone`).

Many identifiers are bare digits with a one-in-ten check digit, so a random 9-digit order number
passes some validator. Two rules keep that down:
- `STRONG` identifiers (letters in fixed places, two check digits, a date and a check digit, or
  15+ digits) count wherever they stand; the others (`WEAK`: BSN, SIN, Aadhaar, ...) only in
  their usual written shape (`046 454 286`, `2345 6789 0123`) or after a word naming an
  identifier;
- a word naming an identifier ("PESEL", "Steuer-ID", "BSN", "身份证", ...) within `WINDOW`
  characters before the number restricts the validators to the ones it names: a PESEL that
  fails its checksum is not redacted because it happens to be a valid CPF.

Letters must be upper case (identifiers are written so); this also keeps the streaming tail rule
small (a trailing run of upper case, digits and separators, at most `MAX_ID_CHARS`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from stdnum.be import nn as be_nn
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.cl import rut
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.dk import cpr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.jp import in_ as jp_in
from stdnum.kr import rrn
from stdnum.mx import curp
from stdnum.nl import bsn
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.pt import nif as pt_nif
from stdnum.ro import cnp
from stdnum.ru import inn
from stdnum.se import personnummer
from stdnum.tr import tckimlik
from stdnum.us import itin, ssn
from stdnum.za import idnr as za_idnr

from kt_trio.policies.pii_phone import WINDOW

# The longest identifier as written, separators included (`1 85 05 78 006 084 91`, 21; a CURP
# or a Chinese RIC in groups, ~24). Streaming holds at most this much of an upper-case tail.
MAX_ID_CHARS = 26

ID_RUN = re.compile(r"(?<![A-Za-z0-9])[A-Z0-9]+(?:[ .\-/][A-Z0-9]+)*(?![A-Za-z0-9])")
_TOKEN = re.compile(r"[A-Z0-9]+")

# UK National Insurance number: no check digit; HMRC's prefix rules (no D F I Q U V, O not
# second, BG GB KN NK NT TN ZZ never issued) and a suffix A-D.
_NINO = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]")


def _nino(compact: str) -> bool:
    return _NINO.fullmatch(compact) is not None


def _hetu(raw: str) -> bool:
    return hetu.is_valid(raw)


def _swedish(raw: str) -> bool:
    return personnummer.is_valid(raw)


# name -> (validator of the compact form (or of the raw text), compact pattern, usual written
# shape (None: strong, counts anywhere), takes the raw text)
_Check = Callable[[str], bool]
IDS: dict[str, tuple[_Check, re.Pattern[str], re.Pattern[str] | None, bool]] = {}


def _id(name: str, check: _Check, compact: str, shape: str | None = None, raw: bool = False) -> None:
    IDS[name] = (check, re.compile(compact), None if shape is None else re.compile(shape), raw)


_D = r"\d"
_id("gb_nino", _nino, r"[A-Z]{2}\d{6}[A-D]")
_id("es_dni", dni.is_valid, r"\d{8}[A-Z]")
_id("es_nie", nie.is_valid, r"[XYZ]\d{7}[A-Z]")
_id("it_cf", codicefiscale.is_valid, r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]")
_id("in_pan", pan.is_valid, r"[A-Z]{3}[ABCFGHLJPT][A-Z]\d{4}[A-Z]")
_id("mx_curp", curp.is_valid, r"[A-Z]{4}\d{6}[HM][A-Z]{5}[A-Z0-9]\d")
_id("cn_ric", ric.is_valid, r"\d{17}[\dX]")
_id("fr_nir", nir.is_valid, r"[12]\d{4}(?:\d\d|2A|2B)\d{8}")
_id("pl_pesel", pesel.is_valid, r"\d{11}")
_id("br_cpf", cpf.is_valid, r"\d{11}")
_id("de_idnr", idnr.is_valid, r"\d{11}")
_id("kr_rrn", rrn.is_valid, r"\d{13}", r"\d{6}-\d{7}")
_id("us_ssn", ssn.is_valid, r"\d{9}", r"\d{3}[- ]\d{2}[- ]\d{4}")
_id("us_itin", itin.is_valid, r"9\d{8}", r"9\d{2}[- ]\d{2}[- ]\d{4}")
_id("nl_bsn", bsn.is_valid, r"\d{9}", r"\d{4}\.\d{2}\.\d{3}|\d{3}\.\d{3}\.\d{3}")
_id("ca_sin", sin.is_valid, r"\d{9}", r"\d{3}[ -]\d{3}[ -]\d{3}")
_id("in_aadhaar", aadhaar.is_valid, r"\d{12}", r"\d{4}[ -]\d{4}[ -]\d{4}")
_id("jp_mynumber", jp_in.is_valid, r"\d{12}", r"\d{4}[ -]\d{4}[ -]\d{4}")
_id("ru_inn", inn.is_valid, r"\d{10}|\d{12}", r"$^")
_id("tr_tckn", tckimlik.is_valid, r"[1-9]\d{10}", r"$^")
_id("be_nn", be_nn.is_valid, r"\d{11}", r"\d{2}\.\d{2}\.\d{2}-\d{3}\.\d{2}")
_id("no_fnr", fodselsnummer.is_valid, r"\d{11}", r"\d{6} \d{5}")
_id("se_pnr", _swedish, r"\d{10}|\d{12}", r"(?:\d\d)?\d{6}[-+]\d{4}", raw=True)
_id("dk_cpr", cpr.is_valid, r"\d{10}", r"\d{6}-\d{4}")
_id("fi_hetu", _hetu, r"\d{6}[-+A-FU-Y]?\d{3}[0-9A-Y]", r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]", raw=True)
_id("pt_nif", pt_nif.is_valid, r"[1-35-9]\d{8}", r"$^")
_id("cl_rut", rut.is_valid, r"\d{7,8}[\dK]", r"\d{1,2}\.\d{3}\.\d{3}-[\dK]")
_id("ro_cnp", cnp.is_valid, r"[1-8]\d{12}", r"$^")
_id("za_id", za_idnr.is_valid, r"\d{13}", r"\d{6} \d{4} \d{3}")

_ALL = tuple(IDS)
_STRONG = tuple(n for n, v in IDS.items() if v[2] is None)
_LENGTHS = frozenset(range(8, 19))

# Words that name identifiers (lower-cased text) -> the identifiers they name ("*": any).
_WORDS: list[tuple[str, tuple[str, ...]]] = [
    (r"ssn|social security", ("us_ssn", "us_itin")),
    (r"itin|taxpayer", ("us_itin",)),
    (r"nino|national insurance|ni number", ("gb_nino",)),
    (r"nir|insee|sécu|secu|sécurité sociale|securite sociale|numéro de sécurité", ("fr_nir",)),
    (r"steuer-?id|steuer-?identifikationsnummer|identifikationsnummer|idnr|steuernummer", ("de_idnr",)),
    (r"dni|documento nacional|nif", ("es_dni", "es_nie", "pt_nif")),
    (r"nie|número de extranjero", ("es_nie",)),
    (r"codice fiscale|cod\. fisc\.", ("it_cf",)),
    (r"bsn|burgerservicenummer|sofinummer|sofi-nummer", ("nl_bsn",)),
    (r"pesel", ("pl_pesel",)),
    (r"cpf", ("br_cpf",)),
    (r"aadhaar|aadhar|uidai|आधार", ("in_aadhaar",)),
    (r"pan card|pan number|pan|permanent account number", ("in_pan",)),
    (r"sin|social insurance|nas|assurance sociale", ("ca_sin",)),
    (r"inn|инн|идентификационный номер", ("ru_inn",)),
    (r"curp", ("mx_curp",)),
    (r"rut|run", ("cl_rut",)),
    (r"cnp", ("ro_cnp",)),
    (r"tckn|tc kimlik|kimlik", ("tr_tckn",)),
    (r"personnummer", ("se_pnr",)),
    (r"cpr|cpr-nummer", ("dk_cpr",)),
    (r"hetu|henkilötunnus", ("fi_hetu",)),
    (r"fødselsnummer|fodselsnummer", ("no_fnr",)),
    (r"rijksregisternummer|numéro national|registre national", ("be_nn",)),
    (r"주민등록번호|rrn", ("kr_rrn",)),
    (r"身份证|公民身份号码|居民身份证", ("cn_ric",)),
    (r"マイナンバー|個人番号|my number", ("jp_mynumber",)),
    (
        r"national id|national identity|id number|identity number|identification number|identity card|"
        r"tax id|tax number|numéro d'identité|número de identidad|numero di identità|personalausweis|"
        r"паспорт|номер документа|身分証|证件号",
        ("*",),
    ),
]
_WORD_NAMES: list[tuple[str, ...]] = [names for _, names in _WORDS]
_ID_WORD = re.compile(
    "(?<![^\\W\\d_])(?:" + "|".join(f"(?P<w{i}>{pat})" for i, (pat, _) in enumerate(_WORDS)) + ")(?![^\\W\\d_])"
)
# Any identifier's compact form: a stretch that is none needs no word lookup.
_ANY_COMPACT = re.compile("|".join(f"(?:{v[1].pattern})" for v in IDS.values()))


def named_ids(before: str) -> tuple[str, ...] | None:
    """The identifiers the words in `before` name (None: none named)."""
    names: set[str] = set()
    for m in _ID_WORD.finditer(before.lower()):
        group = m.lastgroup
        if group is not None:
            names.update(_WORD_NAMES[int(group[1:])])
    if not names:
        return None
    return _ALL if "*" in names else tuple(n for n in _ALL if n in names)


def _valid_stretch(raw: str, compact: str, named: tuple[str, ...] | None) -> bool:
    for name in named if named is not None else _ALL:
        check, pattern, shape, takes_raw = IDS[name]
        if pattern.fullmatch(compact) is None:
            continue
        if named is None and shape is not None and shape.fullmatch(raw) is None:
            continue
        try:
            if check(raw if takes_raw else compact):
                return True
        except Exception:
            continue
    return False


def find_ids(text: str, pos: int, out: list[tuple[int, int]], raw_out: list[tuple[int, int]]) -> None:
    """Append the spans of valid identifiers at or after `pos` to `out`, and every stretch that
    was tried to `raw_out` (the streaming redactor must not cut one)."""
    for run in ID_RUN.finditer(text, pos):
        rs, re_ = run.span()
        if re_ - rs < 8:
            continue
        toks = [t.span() for t in _TOKEN.finditer(text, rs, re_)]
        digit_tok = [text[a:b].isdigit() for a, b in toks]
        n = len(toks)
        i = 0
        while i < n:
            best = -1
            # A stretch of a longer group of numbers (a card number, a phone number, a sequence
            # of codes) is not an identifier: digits must not continue it on either side.
            if i > 0 and digit_tok[i - 1] and digit_tok[i]:
                i += 1
                continue
            named: tuple[str, ...] | None = None  # looked up at the first plausible stretch
            looked_up = False
            for j in range(i, n):
                s, e = toks[i][0], toks[j][1]
                if e - s > MAX_ID_CHARS:
                    break
                if j + 1 < n and digit_tok[j + 1] and digit_tok[j]:
                    continue
                raw = text[s:e]
                compact = "".join(text[a:b] for a, b in toks[i : j + 1])
                if len(compact) not in _LENGTHS or not any(c.isdigit() for c in compact):
                    continue
                raw_out.append((s, e))
                if _ANY_COMPACT.fullmatch(compact) is None:
                    continue
                if not looked_up:
                    named = named_ids(text[max(0, s - WINDOW) : s])
                    looked_up = True
                if _valid_stretch(raw, compact, named):
                    best = j
            if best >= 0:
                out.append((toks[i][0], toks[best][1]))
                i = best + 1
            else:
                i += 1
