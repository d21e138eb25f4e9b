"""pii-detector: each kind, its validator, and the lookalikes it must leave alone."""

from __future__ import annotations

import pytest

from kt_trio.config.schema import PiiDetectorSettings
from kt_trio.policies.pii import PiiDetector, redact


@pytest.fixture(scope="module")
def pii() -> PiiDetector:
    return PiiDetector()


def r(pii: PiiDetector, text: str) -> str:
    return redact(text, pii.find(text))


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("mail bob.smith+tag@example.co.uk today", "mail [REDACTED:EMAIL] today"),
        ("Call (415) 555-2671.", "Call [REDACTED:PHONE]."),
        ("Call +1 415 555 2671 now", "Call [REDACTED:PHONE] now"),
        ("UK office +44 20 7946 0958", "UK office [REDACTED:PHONE]"),
        ("card 4111 1111 1111 1111 thanks", "card [REDACTED:CREDIT_CARD] thanks"),
        ("card 5500-0000-0000-0004", "card [REDACTED:CREDIT_CARD]"),
        ("amex 378282246310005.", "amex [REDACTED:CREDIT_CARD]."),
        ("ssn 123-45-6789", "ssn [REDACTED:SSN]"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [REDACTED:IBAN] please"),
        ("IBAN DE89370400440532013000", "IBAN [REDACTED:IBAN]"),
        ("host 192.168.1.20 is down", "host [REDACTED:IP_ADDRESS] is down"),
        ("v6 fe80::1ff:fe23:4567:890a ok", "v6 [REDACTED:IP_ADDRESS] ok"),
        ("Hi, my name is John Smith.", "Hi, my name is [REDACTED:NAME]."),
        ("Please ask Dr. Jane Doe", "Please ask Dr. [REDACTED:NAME]"),
        ("Hello, this is Sarah from accounts", "Hello, this is [REDACTED:NAME] from accounts"),
        ("I'm Alice.", "I'm [REDACTED:NAME]."),
        ("Regards,\nMaria Garcia", "Regards,\n[REDACTED:NAME]"),
        ("call me Mary-Jane Watson", "call me [REDACTED:NAME]"),
        ("her name is Siobhan O'Neil", "her name is [REDACTED:NAME]"),
    ],
)
def test_detects_and_redacts(pii, text, want):
    assert r(pii, text) == want


@pytest.mark.parametrize(
    "text",
    [
        "the meeting is on 2024-01-15 at 12:30:45",
        "order #41111111111111112 shipped",  # Luhn fails and too long
        "card 4111 1111 1111 1112",  # Luhn fails
        "ssn 000-12-3456 and 666-12-3456 and 900-12-3456 are never issued",
        "ssn 123-00-4567 / 123-45-0000",
        "IBAN GB82 WEST 1234 5698 7654 33",  # checksum fails
        "version 1.2.3.4.5 and 999.1.1.1",
        "call 555-0100",  # no area code: not a valid number
        "10:30 and 12:45:00",
        "I am Happy to help, This is Important, I'm Sorry",
        "my name is john",  # lower case: not detected (documented miss)
        "kill the process 4242",
    ],
)
def test_leaves_lookalikes_alone(pii, text):
    assert pii.find(text) == []


def test_several_kinds_in_one_text(pii):
    text = "Reach John at john@acme.io or 415-555-2671; my name is Ann Lee."
    assert r(pii, text) == "Reach John at [REDACTED:EMAIL] or [REDACTED:PHONE]; my name is [REDACTED:NAME]."
    assert [s.kind for s in pii.find(text)] == ["EMAIL", "PHONE", "NAME"]


def test_card_followed_by_other_digits_still_found(pii):
    assert r(pii, "4111 1111 1111 1111 2024") == "[REDACTED:CREDIT_CARD] 2024"


def test_iban_followed_by_capitals_still_found(pii):
    assert r(pii, "GB82 WEST 1234 5698 7654 32 IS MINE") == "[REDACTED:IBAN] IS MINE"


def test_detect_patterns_subset_and_aliases():
    only = PiiDetector(PiiDetectorSettings(detect_patterns=("email", "phone_number")))  # type: ignore[arg-type]
    assert only.kinds == {"EMAIL", "PHONE"}
    assert redact("a@b.io 123-45-6789", only.find("a@b.io 123-45-6789")) == "[REDACTED:EMAIL] 123-45-6789"


def test_unknown_pattern_is_an_error():
    with pytest.raises(ValueError, match="unknown pattern 'passport'"):
        PiiDetector(PiiDetectorSettings(detect_patterns=("passport",)))  # type: ignore[arg-type]


def test_phone_regions_setting():
    # Every region's national format is found without configuring it (issue 15)...
    only_phone = PiiDetector(PiiDetectorSettings(detect_patterns=("phone",)))
    assert [s.kind for s in only_phone.find("ring 020 7946 0958")] == ["PHONE"]
    # ...and `phone_regions` adds regions beyond the common ones, tried first and leniently.
    ke = PiiDetector(PiiDetectorSettings(detect_patterns=("phone",), phone_regions=("KE",)))
    assert [s.kind for s in ke.find("ring 0712 345678")] == ["PHONE"]


def test_default_settings():
    d = PiiDetector()
    assert d.settings.action == "redact" and d.settings.directions == {"input", "output"}
    assert d.settings.on_error == "block"


def test_redaction_never_leaks_digits_of_a_match(pii):
    out = r(pii, "ssn 123-45-6789, card 4111111111111111")
    assert "6789" not in out and "1111" not in out


def test_non_ascii_text(pii):
    assert r(pii, "Grüße, mein Name: Jürgen — mail jürgen@x.de") == (
        "Grüße, mein Name: [REDACTED:NAME] — mail [REDACTED:EMAIL]"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Appelez-moi au 06 12 34 56 78 demain",
        "Ruf mich an: 030 12345678",
        "Mi móvil es 612 34 56 78",
        "chiamami al 338 123 4567",
        "bel me op 06-12345678",
        "zadzwoń 512 345 678",
        "ligue (11) 91234-5678",
        "звоните 8 (912) 345-67-89",
        "电话 138 0013 8000",
        "電話番号は090-1234-5678です",
        "call +44 20 7946 0958",
        "call 0044 20 7946 0958",
        "+33 6 12 34 56 78",
        "Switchboard: 020 7946 0958",  # no phone word: written exactly as the UK groups it
        # Argentina's mobiles: trunk 0, area code, mobile "15" (the plan's own prefix rule).
        "Escribime o llamame al 011 15-2345-9443.",
        "mi celu es 011 15-4433-2211",
        "Fono: 9 6123 4567",
        "Márcame al 55 1234 5678",
    ],
)
def test_phone_numbers_of_every_region(pii, text):
    assert [s.kind for s in pii.find(text)] == ["PHONE"], text


@pytest.mark.parametrize(
    "text",
    [
        # A phone word, then an order word nearer the number: the order word speaks for it.
        "Llamá a soporte por el pedido 2024-558812, importe $ 1.234.567,00.",
        # Valid US digits, but not grouped as a US number.
        "order 2024-558812 shipped",
        "Llama 3.1 405B was trained on 15.6 trillion tokens; job 2024-0612 used 39,300,000 GPU hours.",
    ],
)
def test_numbers_that_are_no_phone_numbers(pii, text):
    assert pii.find(text) == [], text


@pytest.mark.parametrize(
    "text",
    [
        "NINO AB 12 34 56 C",
        "NIR 1 85 05 78 006 084 91",
        "Steuer-ID 36 574 261 809",
        "DNI 54362315K",
        "NIE X2482300W",
        "codice fiscale RCCMNL83S18D969H",
        "BSN 111222333",
        "PESEL 44051401359",
        "CPF 390.533.447-05",
        "Aadhaar 2341 2341 2346",
        "PAN ACUPA7085R",
        "SIN 130 692 544",
        "ITIN 912-90-3456",
        "身份证 110101195402240454",
    ],
)
def test_national_identifiers(pii, text):
    assert r(pii, text).endswith("[REDACTED:NATIONAL_ID]"), text


@pytest.mark.parametrize(
    "text",
    [
        "PESEL 44051401358",
        "BSN 111222334",
        "DNI 54362315A",
        "CPF 390.533.447-06",
        "Aadhaar 2341 2341 2347",
        "Steuer-ID 36 574 261 808",
        "SIN 130 692 545",
        "order 123456789 shipped",  # a bare 9-digit number with no identifier word: no BSN/SIN
        "Order 4471-2290 shipped on 2024-03-18",
    ],
)
def test_checksum_invalid_identifiers_are_left_alone(pii, text):
    assert pii.find(text) == [], text


def test_ssn_keeps_its_own_kind_and_national_id_covers_it_alone():
    assert r(PiiDetector(), "ssn 536-90-4399") == "ssn [REDACTED:SSN]"
    only = PiiDetector(PiiDetectorSettings(detect_patterns=("national_id",)))
    assert r(only, "ssn 536-90-4399") == "ssn [REDACTED:NATIONAL_ID]"
