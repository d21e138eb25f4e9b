"""Split-safe redaction of streamed output.

The property every test here checks: whatever way a text is cut into deltas, the concatenation
of what the client receives equals redacting the whole text at once (which is what `.done` and
`response.done` carry), nothing is lost or duplicated, and only a bounded tail is ever held.
"""

from __future__ import annotations

import json
import random

import pytest

from kt_trio.config.schema import PiiDetectorSettings
from kt_trio.policies.chain import MAX_OPEN_PARTS, build_chain
from kt_trio.policies.pii import MAX_MATCH, PiiDetector, redact
from kt_trio.policies.streaming import MAX_HELD, StreamScanner

PII = PiiDetector()

SAMPLES = [
    "Call me at +1 415 555 2671 or (415) 555-2671 today.",
    "Mail bob.smith@example.com or alice@mail.example.co.uk.",
    "Card 4111 1111 1111 1111 and 5500-0000-0000-0004 ok",
    "SSN 123-45-6789; not 000-12-3456.",
    "IBAN GB82 WEST 1234 5698 7654 32 and DE89370400440532013000 thanks",
    "ip 192.168.1.20 and fe80::1ff:fe23:4567:890a done",
    "Hi, my name is John Smith and this is Dr. Jane Doe. I am Happy. Regards,\nMaria Garcia",
    "I'm Alice. This is Bob O'Neil speaking. Call me Mary-Jane Watson please",
    "Contact: name: Peter Parker, email peter@dailybugle.com, phone 212-555-0199",
    "Numbers 2024-01-15 12:30:45 version 1.2.3.4.5 and 41111111111111112 nothing",
    "Grüße, mein Name: Jürgen — jürgen@example.de",
]


def stream(text: str, cuts: list[int]) -> tuple[str, int]:
    """What the client receives for `text` cut at `cuts`, and the most characters ever held."""
    sc = StreamScanner(PII)
    out: list[str] = []
    prev = 0
    most = 0
    for c in [*cuts, len(text)]:
        emit, spans = sc.feed(text[prev:c])
        out.append(redact(emit, spans))
        most = max(most, len(sc.held))
        prev = c
    tail, spans = sc.flush()
    out.append(redact(tail, spans))
    return "".join(out), most


def whole(text: str) -> str:
    return redact(text, PII.find(text))


@pytest.mark.parametrize("text", SAMPLES)
def test_every_single_split_position(text):
    want = whole(text)
    for i in range(1, len(text)):
        assert stream(text, [i])[0] == want, (text[:i], text[i:])


@pytest.mark.parametrize("text", SAMPLES)
def test_character_by_character(text):
    assert stream(text, list(range(1, len(text))))[0] == whole(text)


@pytest.mark.parametrize("text", SAMPLES)
def test_random_multi_splits(text):
    rnd = random.Random(text)
    want = whole(text)
    for _ in range(200):
        cuts = sorted(rnd.sample(range(1, len(text)), rnd.randint(1, min(12, len(text) - 1))))
        assert stream(text, cuts)[0] == want, cuts


@pytest.mark.parametrize(
    ("match", "kind"),
    [
        ("+1 415 555 2671", "PHONE"),
        ("bob@example.com", "EMAIL"),
        ("4111 1111 1111 1111", "CREDIT_CARD"),
        ("123-45-6789", "SSN"),
        ("GB82 WEST 1234 5698 7654 32", "IBAN"),
        ("10.0.0.254", "IP_ADDRESS"),
        ("06 12 34 56 78", "PHONE"),
        ("+7 912 345-67-89", "PHONE"),
        ("AB 12 34 56 C", "NATIONAL_ID"),
        ("390.533.447-05", "NATIONAL_ID"),
        ("1 85 05 78 006 084 91", "NATIONAL_ID"),
        ("RCCMNL83S18D969H", "NATIONAL_ID"),
    ],
)
def test_split_inside_the_match_at_every_position(match, kind):
    text = f"Sure, tel/ID: {match}, right."
    want = f"Sure, tel/ID: [REDACTED:{kind}], right."
    start = text.index(match)
    for i in range(start + 1, start + len(match)):
        got, _ = stream(text, [i])
        assert got == want, (text[:i], text[i:])
        shown = got.replace(f"[REDACTED:{kind}]", "")
        assert match[: i - start] not in shown or match[: i - start] in "Sure, tel/ID: "  # no partial leak
    # in three pieces too
    for i in range(start + 1, start + len(match) - 1):
        assert stream(text, [i, i + 1])[0] == want


def test_name_split_across_the_cue_and_the_name():
    text = "Hello! My name is Ada Lovelace and I like maths."
    want = "Hello! My name is [REDACTED:NAME] and I like maths."
    for i in range(1, len(text)):
        for j in range(i + 1, min(len(text), i + 6)):
            assert stream(text, [i, j])[0] == want


def test_cue_after_a_non_ascii_letter_is_held_as_the_whole_text_scan_reads_it():
    # `_scan_names` takes only ASCII word characters for "inside a word", so 'call me' after 'é'
    # is a cue; the tail rules once used `\w` there and released it before the name arrived.
    for text in ("écall me Bob now", "Ørsted called Jane Doe", "ça, my name is Ada"):
        want = whole(text)
        assert "[REDACTED:NAME]" in want
        for i in range(1, len(text)):
            assert stream(text, [i])[0] == want, (text[:i], text[i:])


def test_benign_text_is_not_held_beyond_the_current_word():
    sc = StreamScanner(PII)
    emit, _ = sc.feed("The weather is lovely today, ")
    assert emit == "The weather is lovely today, "
    emit, _ = sc.feed("isn't it")
    assert emit == "isn't "
    assert sc.held == "it"  # the word being written could still become an e-mail address


def test_hold_is_bounded():
    # A long unbroken run (could be an e-mail local part forever): only MAX_MATCH is held.
    text = "x" * 5000
    _, most = stream(text, list(range(100, 5000, 100)))
    assert most <= MAX_MATCH
    # digits with separators, endlessly
    text = "1 " * 3000
    got, most = stream(text, list(range(7, 6000, 7)))
    assert most <= MAX_HELD
    assert got == whole(text)


# --- through the chain: deltas, .done and response.done agree --------------------------------


def _delta(rid: str, iid: str, d: str, i: int = 0, t: str = "response.output_text.delta", ci: int = 0) -> bytes:
    return json.dumps(
        {
            "type": t,
            "event_id": f"ev{i}",
            "response_id": rid,
            "item_id": iid,
            "output_index": 0,
            "content_index": ci,
            "delta": d,
        }
    ).encode()


def _messages(v) -> list[dict]:
    out = []
    if v.forward is not None:
        out.append(json.loads(v.forward))
    out.extend(json.loads(m) for m in v.to_client)
    return out


def _session():
    return build_chain(["pii-detector"], {}).new_session(session_id="s", user_agent="ua", client_ip="127.0.0.1")


@pytest.mark.parametrize(
    ("delta_t", "done_t", "field"),
    [
        ("response.output_text.delta", "response.output_text.done", "text"),
        ("response.output_audio_transcript.delta", "response.output_audio_transcript.done", "transcript"),
        ("response.audio_transcript.delta", "response.audio_transcript.done", "transcript"),
        ("response.text.delta", "response.text.done", "text"),
    ],
)
def test_chain_stream_done_and_response_done_consistent(delta_t, done_t, field):
    s = _session()
    full = "Your SSN 123-45-6789 is on file; call +1 415 555 2671 or mail a.b@example.org."
    rnd = random.Random(7)
    cuts = sorted(rnd.sample(range(1, len(full)), 15))
    pieces = [full[a:b] for a, b in zip([0, *cuts], [*cuts, len(full)], strict=True)]
    got: list[dict] = []
    for i, p in enumerate(pieces):
        got += _messages(s.on_upstream_message(_delta("r1", "i1", p, i, delta_t), True, 1.0))
    done = {
        "type": done_t,
        "event_id": "d",
        "response_id": "r1",
        "item_id": "i1",
        "output_index": 0,
        "content_index": 0,
        field: full,
    }
    got += _messages(s.on_upstream_message(json.dumps(done).encode(), True, 1.0))
    want = whole(full)
    streamed = "".join(m["delta"] for m in got if m["type"] == delta_t)
    assert streamed == want
    assert all(m["delta"] for m in got if m["type"] == delta_t)  # empty deltas are dropped
    assert got[-1]["type"] == done_t and got[-1][field] == want
    assert sum(1 for m in got if m["type"] == done_t) == 1
    part = {"type": "output_text", "text": full} if field == "text" else {"type": "output_audio", "transcript": full}
    rdone = {
        "type": "response.done",
        "response": {"id": "r1", "output": [{"id": "i1", "type": "message", "role": "assistant", "content": [part]}]},
    }
    (m,) = _messages(s.on_upstream_message(json.dumps(rdone).encode(), True, 1.0))
    assert m["response"]["output"][0]["content"][0][field] == want


def test_unchanged_deltas_forwarded_as_same_bytes_when_nothing_is_held():
    s = _session()
    raw = _delta("r", "i", "Hello there. ")
    v = s.on_upstream_message(raw, True, 1.0)
    assert v.forward is raw


def test_interleaved_parts_and_responses_are_independent():
    s = _session()
    a = "A: 123-45-6789 done."
    b = "B: bob@example.com done."
    got_a, got_b = [], []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            got_a += _messages(s.on_upstream_message(_delta("r1", "i1", a[i], i), True, 1.0))
        if i < len(b):
            got_b += _messages(s.on_upstream_message(_delta("r2", "i9", b[i], i), True, 1.0))
    for rid, iid, text, got in (("r1", "i1", a, got_a), ("r2", "i9", b, got_b)):
        done = {
            "type": "response.output_text.done",
            "response_id": rid,
            "item_id": iid,
            "content_index": 0,
            "text": text,
        }
        got += _messages(s.on_upstream_message(json.dumps(done).encode(), True, 1.0))
        assert "".join(m.get("delta", "") for m in got) == whole(text)


def test_text_and_transcript_of_one_part_are_separate_streams():
    s = _session()
    got = []
    got += _messages(
        s.on_upstream_message(_delta("r", "i", "call 415 555", 0, "response.output_audio_transcript.delta"), True, 1)
    )
    got += _messages(s.on_upstream_message(_delta("r", "i", "hello ", 1, "response.output_text.delta"), True, 1))
    got += _messages(
        s.on_upstream_message(_delta("r", "i", " 2671.", 2, "response.output_audio_transcript.delta"), True, 1)
    )
    done = {
        "type": "response.output_audio_transcript.done",
        "response_id": "r",
        "item_id": "i",
        "content_index": 0,
        "transcript": "x",
    }
    got += _messages(s.on_upstream_message(json.dumps(done).encode(), True, 1))
    transcript = "".join(m["delta"] for m in got if m["type"] == "response.output_audio_transcript.delta")
    assert transcript == "call [REDACTED:PHONE]."


def test_response_done_flushes_parts_whose_done_never_came():
    s = _session()
    got = _messages(s.on_upstream_message(_delta("r", "i", "ring me: 415 555 26"), True, 1))
    rdone = {"type": "response.done", "response": {"id": "r", "status": "cancelled", "output": []}}
    got += _messages(s.on_upstream_message(json.dumps(rdone).encode(), True, 1))
    assert "".join(m.get("delta", "") for m in got) == "ring me: 415 555 26"
    assert got[-1]["type"] == "response.done"
    assert s.state.parts == {}


def test_open_parts_are_capped_and_evicted_parts_flushed():
    s = _session()
    got = []
    for k in range(MAX_OPEN_PARTS + 5):
        got += _messages(s.on_upstream_message(_delta("r", f"item{k}", "word"), True, 1))
    assert len(s.state.parts) == MAX_OPEN_PARTS
    flushed = [m for m in got if m.get("delta") == "word"]
    assert len(flushed) == 5  # the evicted parts' held text still reached the client, once


def test_input_transcription_deltas_are_redacted_as_input():
    s = _session()
    got = []
    for p in ["my number is 415 5", "55 2671"]:
        ev = {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "u1",
            "content_index": 0,
            "delta": p,
        }
        got += _messages(s.on_upstream_message(json.dumps(ev).encode(), True, 1))
    ev = {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "u1",
        "content_index": 0,
        "transcript": "my number is 415 555 2671",
    }
    got += _messages(s.on_upstream_message(json.dumps(ev).encode(), True, 1))
    assert "".join(m.get("delta", "") for m in got) == "my number is [REDACTED:PHONE]"
    assert got[-1]["transcript"] == "my number is [REDACTED:PHONE]"


# --- randomized: any text, any cuts, every combination of kinds -------------------------------

# Pieces of text that make or nearly make every kind, the cues and titles of names in both cases,
# and the plain words and punctuation between them (what `PiiDetector.plain_tail_start` takes).
FRAGMENTS = [
    *("my name is ", "My name is ", "this is ", "This is ", "call me ", "i am ", "I'm ", "named ", "called"),
    *("Regards,\n", "thanks,", "Cheers, ", "name: ", "her name", " my na", "Dr. ", "Mrs ", "Prof", "D", "M", "Sir"),
    *("John", "Smith", "Ada Lovelace", "O'Neil", "Mary-Jane", "Jürgen", "Zoe", "I", "Happy", "The", "x", "é"),
    *("the", " summary", "notes", "and", ":", ", ", ". ", " ", "  ", "   ", "\n", "\t", "(", ")", "+", "-", "'"),
    *("+1 415 555 2671", "(415) 555-2671", "415", " 555", "2671", "123-45-6789", "4111 1111 1111 1111"),
    *("bob.smith@example.com", "a@b.co", "@", "example.com", "GB82 WEST 1234 5698 7654 32", "GB82", "WEST"),
    *("DE89370400440532013000", "192.168.1.20", "10.0.0.", "fe80::1ff:fe23:4567:890a", "dead:beef::cafe", "::"),
    # national identifiers (valid and checksum-invalid), the words that name them, and national
    # phone numbers with the words that make them phones
    *("BSN ", "PESEL: ", "DNI ", "NIE ", "Steuer-ID ", "CPF ", "Aadhaar ", "SIN ", "身份证 ", "NINO ", "ITIN "),
    *("111222333", "111222334", "44051401359", "44051401358", "54362315K", "54362315A", "X2482300W"),
    *("AB 12 34 56 C", "RCCMNL83S18D969H", "ACUPA7085R", "1 85 05 78 006 084 91", "36 574 261 809"),
    *("390.533.447-05", "390.533.447-06", "2341 2341 2346", "130 692 544", "912-90-3456", "AB", "X", "K "),
    *("Handy ", "téléphone ", "телефон ", "电话 ", "06 12 34 56 78", "030 12345678", "8 (912) 345-67-89"),
    *("+33 6 12 34 56 78", "0044 20 7946 0958", "612 34 56 78", "090-1234-5678", "138 0013 8000"),
]
KIND_SETS = [
    None,
    ["name"],
    ["email"],
    ["phone", "credit_card"],
    ["iban"],
    ["ip_address"],
    ["name", "email"],
    ["national_id"],
    ["national_id", "phone"],
]


def _random_text(rnd: random.Random) -> str:
    return "".join(rnd.choice(FRAGMENTS) + rnd.choice(["", "", " "]) for _ in range(rnd.randint(1, 18)))


@pytest.mark.parametrize("kinds", KIND_SETS)
def test_random_texts_in_random_pieces_stream_as_they_redact_whole(kinds):
    pii = PiiDetector(PiiDetectorSettings(detect_patterns=tuple(kinds)) if kinds else None)
    rnd = random.Random(f"stream-{kinds}")
    for _ in range(250):
        text = _random_text(rnd)
        want = redact(text, pii.find(text))
        for _ in range(6):
            cuts = sorted(set(rnd.sample(range(1, len(text)), min(len(text) - 1, rnd.randint(1, 20))))) or [len(text)]
            sc = StreamScanner(pii)
            out: list[str] = []
            for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
                emit, spans = sc.feed(text[a:b])
                out.append(redact(emit, spans))
                assert len(sc.held) <= MAX_HELD
            tail, spans = sc.flush()
            out.append(redact(tail, spans))
            assert "".join(out) == want, (text, cuts)
