"""What the mock Realtime / Responses WebSocket provider does (`MockBehaviour`) and the usage
blocks it reports, in the providers' shapes (pure data; the server is `kt_trio.mocks.realtime`)."""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

_DEFAULT_REJECT_BODY = (
    b'{"error":{"type":"invalid_request_error","code":"mock_refused",'
    b'"message":"The mock upstream refused the handshake."}}'
)

Mode = Literal["realtime", "responses", "echo"]
# When a one-shot fault frame is sent: right after the handshake, or after the first
# message from the peer has been received (and recorded).
Trigger = Literal["connect", "first_message"]

DEFAULT_TEXT = "Hello from the kt_trio mock upstream."


def _tuple_or_none(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class MockBehaviour:
    """Every knob of the mock. Read once per connection, when its handshake arrives.

    Faults combine where that makes sense: e.g. ``handshake_delay`` with ``reject_status``,
    ``invalid_json_on`` with ``close_after``, ``read_delay`` with any mode.
    """

    mode: Mode = "realtime"
    # Used when the URL has no ``?model=`` (realtime) or response.create has no "model".
    model: str = "gpt-realtime"

    # What the "model" says. `deltas`, when given, is sent verbatim, one delta per element,
    # so a test can split e.g. a phone number across frames; otherwise `text` is cut into
    # `delta_count` nearly equal pieces.
    text: str = DEFAULT_TEXT
    deltas: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple_or_none)
    delta_count: int = 4
    # Realtime only. None: the transcript repeats the text deltas; (): no transcript events.
    transcript_deltas: tuple[str, ...] | None = attrs.field(default=None, converter=_tuple_or_none)
    # Seconds to sleep before each delta. 0 streams a whole response inline; > 0 streams it in a
    # background task so a response.cancel can interrupt it mid-stream.
    delta_delay: float = 0.0
    # Put the finished message item in response.done / response.completed "output" (as the real
    # APIs do). Off by default: the stream is then exactly the events listed in the module doc.
    include_output_items: bool = False

    # Usage of the i-th response on a connection (i from 0): the token counts grow by
    # `usage_step` per response so tests that sum usage can tell responses apart. See
    # `realtime_usage` and `responses_usage` for the exact numbers.
    input_tokens: int = 120
    output_tokens: int = 48
    cached_tokens: int = 64
    cached_audio_tokens: int = 16
    input_audio_tokens: int = 40
    output_audio_tokens: int = 30
    reasoning_tokens: int = 0
    usage_step: int = 1
    # Transcription of committed audio (`input_audio_buffer.commit`), as the real API sends when
    # `input_audio_transcription` is on: None sends none, else the usage shape to report.
    transcription_usage: Literal["tokens", "duration"] | None = None
    transcription_text: str = "this is what the user said"

    # Selected if the client offers it; otherwise no subprotocol is selected.
    subprotocol: str | None = "realtime"

    # --- faults -------------------------------------------------------------------------------
    # Sleep this long after the upgrade request arrives, before accepting or refusing it.
    handshake_delay: float = 0.0
    # Refuse the handshake with this HTTP status and body.
    reject_status: int | None = None
    reject_body: bytes = _DEFAULT_REJECT_BODY
    # Close with (close_code, close_reason) once this many messages were received; the last
    # of them is recorded but not answered. 0 closes right after the handshake.
    close_after: int | None = None
    close_code: int = 1011
    close_reason: str = "mock upstream closing"
    # Accept, then never read or send (the peer's frames pile up and TCP pushes back).
    stall: bool = False
    # False: ping frames from the peer get no pong (everything else works normally).
    answer_pings: bool = True
    # Send one text frame of exactly this many characters (a valid JSON delta event when the
    # size allows one), on connect or after the first message received.
    oversized_size: int | None = None
    oversized_on: Trigger = "connect"
    # Send one text frame that is not valid JSON.
    invalid_json_on: Trigger | None = None
    # Sleep this long before each read (a slow consumer).
    read_delay: float = 0.0

    def text_deltas(self) -> tuple[str, ...]:
        """The deltas the model streams for each response."""
        if self.deltas is not None:
            return self.deltas
        count = max(1, min(self.delta_count, len(self.text))) if self.text else 1
        size = math.ceil(len(self.text) / count) if self.text else 0
        if size == 0:
            return ("",)
        return tuple(self.text[i : i + size] for i in range(0, len(self.text), size))

    def transcript(self) -> tuple[str, ...]:
        """The audio-transcript deltas of each realtime response."""
        return self.text_deltas() if self.transcript_deltas is None else self.transcript_deltas


def transcription_usage(shape: Literal["tokens", "duration"]) -> dict[str, Any]:
    """The `usage` of a transcription, in either of the two shapes the API documents."""
    if shape == "duration":
        return {"type": "duration", "seconds": 2.5}
    return {
        "type": "tokens",
        "input_tokens": 21,
        "output_tokens": 7,
        "total_tokens": 28,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 21},
    }


def realtime_usage(behaviour: MockBehaviour, index: int) -> dict[str, Any]:
    """The GA Realtime ``usage`` of the `index`-th response (from 0) on one connection."""
    step = index * behaviour.usage_step
    input_tokens = behaviour.input_tokens + step
    output_tokens = behaviour.output_tokens + step
    cached = min(behaviour.cached_tokens, input_tokens)
    cached_audio = min(behaviour.cached_audio_tokens, cached)
    input_audio = min(behaviour.input_audio_tokens, input_tokens)
    output_audio = min(behaviour.output_audio_tokens, output_tokens)
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": input_tokens - input_audio,
            "audio_tokens": input_audio,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {
                "text_tokens": cached - cached_audio,
                "audio_tokens": cached_audio,
                "image_tokens": 0,
            },
        },
        "output_token_details": {
            "text_tokens": output_tokens - output_audio,
            "audio_tokens": output_audio,
        },
    }


def responses_usage(behaviour: MockBehaviour, index: int) -> dict[str, Any]:
    """The Responses API ``usage`` of the `index`-th response (from 0) on one connection."""
    step = index * behaviour.usage_step
    input_tokens = behaviour.input_tokens + step
    output_tokens = behaviour.output_tokens + step
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": min(behaviour.cached_tokens, input_tokens)},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": behaviour.reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }
