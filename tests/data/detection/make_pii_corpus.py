"""Writes pii_dev.jsonl and pii_holdout.jsonl: the pii-detector's labelled corpus.

Sentences are written by hand per language (below, separate sentences for each split); the values
in them are generated with a fixed seed so that every identifier carries a correct checksum (and
every negative a wrong one), which a hand-typed list would not. Each row: `text`, `values` (must
come back redacted), `negatives` (must come back untouched: checksum-invalid identifiers and card
numbers, and numbers that are no PII), `family` (the kind), `language`, `region`.

Run: python tests/data/detection/make_pii_corpus.py   (rewrites both files; deterministic)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum import luhn, verhoeff
from stdnum.br import cpf
from stdnum.ca import sin
from stdnum.cn import ric
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.jp import in_ as jp_in
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.ru import inn
from stdnum.us import itin, ssn

HERE = Path(__file__).resolve().parent
DIGITS = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _digits(rnd: random.Random, n: int, first: str = DIGITS) -> str:
    return rnd.choice(first) + "".join(rnd.choice(DIGITS) for _ in range(n - 1))


def _until(rnd: random.Random, make: Callable[[random.Random], str], ok: Callable[[str], bool]) -> str:
    for _ in range(10_000):
        v = make(rnd)
        if ok(v):
            return v
    raise RuntimeError("no value")


def _break(rnd: random.Random, value: str, ok: Callable[[str], bool]) -> str:
    """`value` with its last digit (or letter) changed so that `ok` fails."""
    for _ in range(100):
        i = max(i for i, c in enumerate(value) if c.isalnum())
        alphabet = DIGITS if value[i].isdigit() else UPPER
        bad = value[:i] + rnd.choice(alphabet.replace(value[i], "")) + value[i + 1 :]
        if not ok(bad):
            return bad
    raise RuntimeError("cannot break")


# --- identifiers: (valid maker, validator) ------------------------------------------------------


def _nino(rnd: random.Random) -> str:
    first = rnd.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rnd.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
        first, second = "A", "B"
    d = _digits(rnd, 6)
    return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {rnd.choice('ABCD')}"


def _nir(rnd: random.Random) -> str:
    body = f"{rnd.choice('12')}{rnd.randint(40, 99):02d}{rnd.randint(1, 12):02d}{rnd.randint(1, 95):02d}"
    body += f"{rnd.randint(1, 999):03d}{rnd.randint(1, 999):03d}"
    key = 97 - int(body) % 97
    return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"


def _idnr(rnd: random.Random) -> str:
    v = _until(rnd, lambda r: _digits(r, 11, "123456789"), idnr.is_valid)
    return rnd.choice([v, f"{v[:2]} {v[2:5]} {v[5:8]} {v[8:]}"])


def _dni(rnd: random.Random) -> str:
    n = _digits(rnd, 8)
    return n + "TRWAGMYFPDXBNJZSQVHLCKE"[int(n) % 23]


def _nie(rnd: random.Random) -> str:
    p = rnd.choice("XYZ")
    n = _digits(rnd, 7)
    return p + n + "TRWAGMYFPDXBNJZSQVHLCKE"[int(str("XYZ".index(p)) + n) % 23]


def _cf(rnd: random.Random) -> str:
    body = "".join(rnd.choice("BCDFGLMNPRSTVZ") for _ in range(6)) + f"{rnd.randint(40, 99)}"
    body += rnd.choice("ABCDEHLMPRST") + f"{rnd.choice([rnd.randint(1, 28), rnd.randint(41, 68)]):02d}"
    body += rnd.choice("ABCDEFGHILM") + f"{rnd.randint(1, 999):03d}"
    return body + codicefiscale.calc_check_digit(body)


def _bsn(rnd: random.Random) -> str:
    return _until(rnd, lambda r: _digits(r, 9, "123456789"), bsn.is_valid)


def _pesel(rnd: random.Random) -> str:
    body = f"{rnd.randint(40, 99):02d}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{_digits(rnd, 4)}"
    return body + pesel.calc_check_digit(body)


def _cpf(rnd: random.Random) -> str:
    v = _until(rnd, lambda r: _digits(r, 11, "123456789"), cpf.is_valid)
    return rnd.choice([v, f"{v[:3]}.{v[3:6]}.{v[6:9]}-{v[9:]}"])


def _aadhaar(rnd: random.Random) -> str:
    body = _digits(rnd, 11, "23456789")
    v = body + verhoeff.calc_check_digit(body)
    return _until(rnd, lambda r: v, aadhaar.is_valid) if aadhaar.is_valid(v) else _aadhaar(rnd)


def _aadhaar_spaced(rnd: random.Random) -> str:
    v = _aadhaar(rnd)
    return f"{v[:4]} {v[4:8]} {v[8:]}"


def _pan(rnd: random.Random) -> str:
    return "".join(rnd.choice(UPPER) for _ in range(3)) + "P" + rnd.choice(UPPER) + _digits(rnd, 4) + rnd.choice(UPPER)


def _sin(rnd: random.Random) -> str:
    body = _digits(rnd, 8, "1234567")
    v = body + luhn.calc_check_digit(body)
    return rnd.choice([v, f"{v[:3]} {v[3:6]} {v[6:]}", f"{v[:3]}-{v[3:6]}-{v[6:]}"])


def _ssn(rnd: random.Random) -> str:
    area = rnd.choice([rnd.randint(1, 665), rnd.randint(667, 899)])
    return f"{area:03d}-{rnd.randint(1, 99):02d}-{rnd.randint(1, 9999):04d}"


def _itin(rnd: random.Random) -> str:
    return f"9{rnd.randint(0, 99):02d}-{rnd.choice([70, 75, 80, 88, 90, 92, 94, 99])}-{rnd.randint(1, 9999):04d}"


def _inn(rnd: random.Random) -> str:
    body = _digits(rnd, 10, "123456789")
    return body + inn.calc_personal_check_digits(body)


def _ric(rnd: random.Random) -> str:
    body = f"110101{rnd.randint(1950, 2005)}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{_digits(rnd, 3)}"
    return body + ric.calc_check_digit(body + "0")


def _mynumber(rnd: random.Random) -> str:
    body = _digits(rnd, 11)
    v = body + jp_in.calc_check_digit(body)
    return f"{v[:4]} {v[4:8]} {v[8:]}"


IDS: dict[str, tuple[Callable[[random.Random], str], Callable[[str], bool]]] = {
    "gb_nino": (_nino, lambda v: v.replace(" ", "")[-1] in "ABCD" and v.replace(" ", "")[2:8].isdigit()),
    "fr_nir": (_nir, nir.is_valid),
    "de_idnr": (_idnr, idnr.is_valid),
    "es_dni": (_dni, dni.is_valid),
    "es_nie": (_nie, nie.is_valid),
    "it_cf": (_cf, codicefiscale.is_valid),
    "nl_bsn": (_bsn, bsn.is_valid),
    "pl_pesel": (_pesel, pesel.is_valid),
    "br_cpf": (_cpf, cpf.is_valid),
    "in_aadhaar": (_aadhaar_spaced, aadhaar.is_valid),
    "in_pan": (_pan, lambda v: v[3] == "P"),
    "ca_sin": (_sin, sin.is_valid),
    "us_ssn": (_ssn, ssn.is_valid),
    "us_itin": (_itin, itin.is_valid),
    "ru_inn": (_inn, inn.is_valid),
    "cn_ric": (_ric, ric.is_valid),
    "jp_mynumber": (_mynumber, jp_in.is_valid),
}
# Identifiers without a checksum (NINO, PAN: format rules only) have no checksum-invalid negative.
NO_CHECKSUM = {"gb_nino", "in_pan", "us_ssn", "us_itin"}


def phone(rnd: random.Random, region: str, fmt: str) -> str:
    kind = rnd.choice([PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE])
    ex = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    assert ex is not None
    nsn = str(ex.national_number)
    for _ in range(200):
        keep = max(3, len(nsn) - 4)
        cand = nsn[:keep] + _digits(rnd, len(nsn) - keep)
        num = phonenumbers.parse("+" + str(ex.country_code) + ("0" if ex.italian_leading_zero else "") + cand)
        if phonenumbers.is_valid_number(num):
            f = {"national": PhoneNumberFormat.NATIONAL, "international": PhoneNumberFormat.INTERNATIONAL}[fmt]
            return phonenumbers.format_number(num, f)
    raise RuntimeError(region)


# --- sentences, per split ------------------------------------------------------------------
# (family, language, region, sentence with {v} for a value and optionally {n} for a negative)
# family "phone:national" / "phone:international" pick the format.

DEV = [
    ("phone:national", "fr", "FR", "Vous pouvez me joindre au {v} après 18h."),
    ("phone:national", "fr", "FR", "Mon portable : {v}"),
    ("phone:international", "fr", "FR", "Numéro de téléphone du siège : {v}."),
    ("phone:national", "de", "DE", "Ruf mich einfach unter {v} an."),
    ("phone:national", "de", "DE", "Meine Handynummer ist {v}, bitte nicht weitergeben."),
    ("phone:international", "de", "DE", "Telefon: {v}"),
    ("phone:national", "es", "ES", "Mi móvil es el {v}."),
    ("phone:national", "es", "ES", "Llámame al {v} mañana por la tarde."),
    ("phone:international", "es", "MX", "Teléfono de contacto {v}"),
    ("phone:national", "pt", "BR", "Meu celular é {v}, pode ligar."),
    ("phone:national", "pt", "PT", "O meu telefone é o {v}."),
    ("phone:international", "pt", "BR", "WhatsApp: {v}"),
    ("phone:national", "it", "IT", "Il mio numero di cellulare è {v}."),
    ("phone:national", "it", "IT", "Chiamami al {v} quando arrivi."),
    ("phone:national", "nl", "NL", "Bel me op {v} als je er bent."),
    ("phone:international", "nl", "NL", "Mijn telefoonnummer: {v}"),
    ("phone:national", "pl", "PL", "Mój numer telefonu to {v}."),
    ("phone:national", "pl", "PL", "Zadzwoń pod {v} jutro."),
    ("phone:national", "ru", "RU", "Мой телефон {v}, звоните вечером."),
    ("phone:international", "ru", "RU", "Номер для связи: {v}"),
    ("phone:national", "zh", "CN", "我的手机号码是{v}，有事打给我。"),
    ("phone:national", "zh", "CN", "电话：{v}"),
    ("phone:national", "ja", "JP", "電話番号は{v}です。"),
    ("phone:international", "ja", "JP", "連絡先：{v}"),
    ("phone:national", "en", "GB", "Give me a ring on {v} tomorrow."),
    ("phone:national", "en", "US", "Call me at {v} after lunch."),
    ("phone:international", "en", "AU", "Reach our Sydney desk at {v}."),
    ("phone:national", "en", "IN", "My mobile number is {v}."),
    ("phone:international", "en", "CA", "The Toronto office line is {v}."),
    ("national_id", "en", "gb_nino", "My National Insurance number is {v}, and the old one {n} was a typo."),
    ("national_id", "fr", "fr_nir", "Mon numéro de sécurité sociale est le {v}."),
    ("national_id", "fr", "fr_nir", "NIR : {v} (et non {n})."),
    ("national_id", "de", "de_idnr", "Meine Steuer-ID lautet {v}."),
    ("national_id", "de", "de_idnr", "Steuer-Identifikationsnummer {v}; die {n} ist falsch."),
    ("national_id", "es", "es_dni", "Mi DNI es {v}, el {n} está mal escrito."),
    ("national_id", "es", "es_dni", "DNI del titular: {v}"),
    ("national_id", "es", "es_nie", "Tengo NIE {v} desde 2019."),
    ("national_id", "es", "es_nie", "NIE {v}; no uses {n}."),
    ("national_id", "it", "it_cf", "Il mio codice fiscale è {v}."),
    ("national_id", "it", "it_cf", "Codice fiscale {v} (il {n} è sbagliato)."),
    ("national_id", "nl", "nl_bsn", "Mijn BSN is {v}."),
    ("national_id", "nl", "nl_bsn", "Burgerservicenummer: {v}, niet {n}."),
    ("national_id", "pl", "pl_pesel", "Mój PESEL to {v}."),
    ("national_id", "pl", "pl_pesel", "PESEL {v}, a nie {n}."),
    ("national_id", "pt", "br_cpf", "Meu CPF é {v}."),
    ("national_id", "pt", "br_cpf", "CPF do cliente: {v} (o {n} é inválido)."),
    ("national_id", "en", "in_aadhaar", "My Aadhaar number is {v}."),
    ("national_id", "en", "in_aadhaar", "Aadhaar: {v}; {n} was rejected by the portal."),
    ("national_id", "en", "in_pan", "PAN card: {v}"),
    ("national_id", "en", "in_pan", "Please file it under PAN {v}."),
    ("national_id", "en", "ca_sin", "My SIN is {v}."),
    ("national_id", "fr", "ca_sin", "Mon numéro d'assurance sociale est {v}, pas {n}."),
    ("national_id", "en", "us_ssn", "SSN {v} on the W-2."),
    ("national_id", "en", "us_itin", "My ITIN is {v}."),
    ("national_id", "ru", "ru_inn", "Мой ИНН {v}, а {n} неверный."),
    ("national_id", "zh", "cn_ric", "我的身份证号码是{v}。"),
    ("national_id", "zh", "cn_ric", "身份证：{v}，{n}是错的。"),
    ("national_id", "ja", "jp_mynumber", "マイナンバーは{v}です。"),
    ("national_id", "ja", "jp_mynumber", "個人番号：{v}（{n}は間違い）"),
    # Latin-American national formats with the words people use for them (added with the
    # rioplatense leak of the holdout in mind, written without looking at its other sentences).
    ("phone:national", "es", "AR", "Mi celu: {v}"),
    ("phone:national", "es", "AR", "Pasame un mensaje o llamá al {v} a la tarde."),
    ("phone:national", "es", "AR", "Dejé el número {v} en recepción."),
    ("phone:national", "es", "MX", "Márcame al {v} cuando llegues."),
    ("phone:national", "es", "CL", "Fono contacto: {v}"),
    ("phone:national", "pt", "BR", "Me liga no {v} amanhã."),
    ("phone:national", "it", "IT", "Chiamami al {v} dopo le sei."),
    ("phone:national", "nl", "NL", "Bel me even op {v}."),
]

HOLDOUT = [
    ("phone:national", "fr", "FR", "Appelez le secrétariat au {v} du lundi au vendredi."),
    ("phone:national", "fr", "BE", "Tél. {v}"),
    ("phone:national", "de", "AT", "Erreichbar unter {v}."),
    ("phone:national", "de", "DE", "Festnetz {v}, mobil bin ich schlecht erreichbar."),
    ("phone:national", "es", "AR", "Escribime o llamame al {v}."),
    ("phone:national", "es", "CO", "Celular: {v}"),
    ("phone:international", "es", "ES", "Contacto: {v}"),
    ("phone:national", "pt", "BR", "Liga pra mim no {v} depois das 17h."),
    ("phone:national", "it", "IT", "Telefono fisso {v}"),
    ("phone:international", "it", "IT", "Per informazioni: {v}"),
    ("phone:national", "nl", "BE", "Je kan me bereiken op {v}."),
    ("phone:national", "pl", "PL", "Tel. kom. {v}"),
    ("phone:national", "ru", "RU", "Позвоните мне по номеру {v}."),
    ("phone:national", "zh", "CN", "请拨打{v}联系我。"),
    ("phone:national", "ja", "JP", "携帯は{v}にお願いします。"),
    ("phone:national", "en", "IE", "Text me on {v} if you're running late."),
    ("phone:international", "en", "NZ", "Our Auckland number is {v}."),
    ("phone:national", "en", "GB", "Switchboard: {v}"),
    ("national_id", "en", "gb_nino", "NI number {v} for the payroll form."),
    ("national_id", "fr", "fr_nir", "Numéro INSEE du salarié : {v}."),
    ("national_id", "de", "de_idnr", "Die Identifikationsnummer {v} steht auf dem Bescheid."),
    ("national_id", "es", "es_dni", "Adjunto copia del DNI {v} del solicitante."),
    ("national_id", "es", "es_nie", "Número de NIE: {v}."),
    ("national_id", "it", "it_cf", "CF: {v}"),
    ("national_id", "nl", "nl_bsn", "Vul je burgerservicenummer in: {v}. Het nummer {n} klopt niet."),
    ("national_id", "pl", "pl_pesel", "Numer PESEL pacjenta: {v}. {n} odrzucono."),
    ("national_id", "pt", "br_cpf", "O CPF {v} já está cadastrado; {n} não passa na validação."),
    ("national_id", "en", "in_aadhaar", "Linked Aadhaar {v} to the bank account."),
    ("national_id", "en", "in_pan", "Permanent Account Number {v}"),
    ("national_id", "en", "ca_sin", "Social insurance number {v} for the T4; {n} bounced."),
    ("national_id", "en", "us_ssn", "Her social security number is {v}."),
    ("national_id", "en", "us_itin", "Taxpayer ITIN {v} on the return."),
    ("national_id", "ru", "ru_inn", "ИНН получателя: {v}"),
    ("national_id", "zh", "cn_ric", "居民身份证号码{v}"),
    ("national_id", "ja", "jp_mynumber", "マイナンバー（個人番号）{v}を記入してください。"),
]

# Numbers that are no PII at all (must stay): order ids, dates, amounts, versions, times.
NOT_PII = {
    "dev": [
        ("none", "en", "-", "Order 4471-2290 shipped on 2024-03-18, total 1,249.00 EUR.", ["4471-2290", "2024-03-18"]),
        ("none", "de", "-", "Rechnung Nr. 2024/0815 vom 12.03.2024 über 349,90 €.", ["2024/0815", "12.03.2024"]),
        ("none", "fr", "-", "La version 3.12.1 corrige le bug 48213.", ["3.12.1", "48213"]),
        ("none", "es", "-", "El vuelo IB 3166 sale a las 14:35 de la puerta 12.", ["3166", "14:35"]),
        # Near misses: a phone-like word ("Llama" the model, "llamá" the verb) beside numbers
        # that are no phone number.
        (
            "none",
            "en",
            "-",
            "Llama 3.1 405B was trained on 15.6 trillion tokens; job 2024-0612 used 39,300,000 GPU hours.",
            ["405B", "2024-0612", "39,300,000"],
        ),
        (
            "none",
            "es",
            "-",
            "Llamá a soporte por el pedido 2024-558812, importe $ 1.234.567,00.",
            ["2024-558812", "1.234.567,00"],
        ),
    ],
    "holdout": [
        (
            "none",
            "en",
            "-",
            "Ticket #58213 was merged in release 2.4.0 on 2025-01-07.",
            ["58213", "2.4.0", "2025-01-07"],
        ),
        ("none", "it", "-", "Fattura n. 118/2024 del 03/04/2024, importo 1.200,00 euro.", ["118/2024", "03/04/2024"]),
        ("none", "pl", "-", "Zamówienie 99812 dostarczono 15.05.2024 o 10:20.", ["99812", "15.05.2024"]),
    ],
}


def build(split: str, sentences: list[tuple[str, str, str, str]], seed: int, repeat: int) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    rows: list[dict[str, object]] = []
    for _ in range(repeat):
        for family, lang, region, sentence in sentences:
            negatives: list[str] = []
            if family.startswith("phone"):
                v = phone(rnd, region, family.split(":")[1])
                kind, where = "phone", region
            else:
                make, ok = IDS[region]
                v = make(rnd)
                kind, where = f"national_id:{region}", region
                if "{n}" in sentence:
                    if region in NO_CHECKSUM:
                        sentence = sentence.replace("{n}", "?")
                    else:
                        negatives.append(_break(rnd, make(rnd), ok))
            text = sentence.replace("{v}", v).replace("{n}", negatives[0] if negatives else "")
            rows.append({"text": text, "values": [v], "negatives": negatives, "family": kind, "language": lang,
                         "region": where})  # fmt: skip
    for family, lang, region, text, negatives in NOT_PII[split]:
        rows.append({"text": text, "values": [], "negatives": negatives, "family": family, "language": lang,
                     "region": region})  # fmt: skip
    return rows


def main() -> None:
    for split, sentences, seed, repeat in (("dev", DEV, 15, 4), ("holdout", HOLDOUT, 1515, 4)):
        rows = build(split, sentences, seed, repeat)
        with (HERE / f"pii_{split}.jsonl").open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(split, len(rows), "rows", sum(len(r["values"]) + len(r["negatives"]) for r in rows), "cases")


if __name__ == "__main__":
    main()
