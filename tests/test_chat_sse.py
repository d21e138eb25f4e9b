"""The incremental SSE parser: any split of the bytes gives the same events, raw bytes kept."""

from __future__ import annotations

from kt_trio.chat.sse import SseEvent, SseParser, encode

STREAM = (
    b": comment\n\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"data:no-space\r\rdata: [DONE]\n\n"
)
EXPECTED = [
    SseEvent('{"a": 1}', "message_start", b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'),
    SseEvent("line one\nline two", None, b"data: line one\ndata: line two\n\n"),
    SseEvent("no-space", None, b"data:no-space\r\r"),
    SseEvent("[DONE]", None, b"data: [DONE]\n\n"),
]


def _parse(pieces: list[bytes]) -> list[SseEvent]:
    p = SseParser()
    out: list[SseEvent] = []
    for piece in pieces:
        out.extend(p.feed(piece))
    return out


def test_whole_stream() -> None:
    events = _parse([STREAM])
    assert [e.data for e in events] == [e.data for e in EXPECTED]
    assert events[1:] == EXPECTED[1:]


def test_every_split_position() -> None:
    whole = _parse([STREAM])
    for i in range(len(STREAM) + 1):
        assert _parse([STREAM[:i], STREAM[i:]]) == whole, i
    assert _parse([bytes([b]) for b in STREAM]) == whole


def test_encode_round_trip() -> None:
    assert _parse([encode('{"x":1}')]) == [SseEvent('{"x":1}', None, b'data: {"x":1}\n\n')]
