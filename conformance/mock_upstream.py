"""A scriptable stand-in for the OpenAI Realtime (GA) and Responses WebSocket APIs.

The gateway's tests, the demo mode (`python -m kt_trio serve` with no config) and the
benchmarks all need an upstream that speaks just enough of the provider protocol to make a
governed round trip observable, and that can misbehave on demand (refuse the handshake, close
mid-session, stall, skip pongs, send oversized or broken frames). This module is that upstream.

Modes (`MockBehaviour.mode`):

* ``"realtime"`` (default): on connect sends ``session.created``. Answers ``session.update`` with
  ``session.updated``; ``conversation.item.create`` with ``conversation.item.added`` then
  ``conversation.item.done`` (the GA names; the beta ``conversation.item.created`` is not sent);
  ``input_audio_buffer.commit``/``.clear`` with ``.committed``/``.cleared``;
  ``input_audio_buffer.append`` and unknown event types get no answer (the real API is silent on
  ``append``; staying silent on unknown types keeps tests free of surprise events).
  ``response.create`` streams ``response.created``, the text deltas
  (``response.output_text.delta`` ... ``response.output_text.done``), the transcript deltas
  (``response.output_audio_transcript.delta`` ... ``.done``) and ``response.done`` with a GA
  ``usage`` block (see `realtime_usage`). ``response.cancel`` answers ``response.done`` with
  status ``cancelled``. A text frame that is not a JSON object gets an ``error`` event.
  A connection whose path ends in ``/responses`` (e.g. ``/v1/responses``) is served in
  ``"responses"`` mode even when the behaviour says ``"realtime"``, so one mock can serve both
  endpoints of a gateway.
* ``"responses"``: nothing on connect; ``response.create`` streams ``response.created``,
  ``response.output_text.delta`` ..., ``response.output_text.done`` and ``response.completed``
  whose ``response.usage`` has the Responses shape (see `responses_usage`). Responses events
  carry a ``sequence_number`` instead of an ``event_id``, like the real API.
* ``"echo"``: every message (text or binary) is sent back unchanged; nothing is sent on connect.

Per connection, the query string can override the behaviour (a gateway passes the client's query
string on to its upstream, so a client can steer the mock through a gateway; the conformance
scenarios do): ``mock_mode=realtime|responses|echo``, ``mock_close_after=N`` with
``mock_close_code=C`` and ``mock_close_reason=R``.

Every realtime server event has an ``event_id`` unique within one mock server.

Why not `trio_websocket.serve_websocket`: its connections always answer pings, and the
"never answer pings" fault needs a connection that does not. So `MockUpstream` runs the same
few steps `trio_websocket.WebSocketServer._handle_connection` runs, with a `WebSocketConnection`
subclass whose ping handler can be switched off. That touches two private members of
trio-websocket (`_reader_task`, `_get_request`) and overrides a third
(`_handle_ping_event`); pyproject pins trio-websocket to 0.12.x, and the test suite exercises
each of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, NoReturn
from urllib.parse import parse_qs, urlsplit

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest
from wsproto import ConnectionType, WSConnection
from wsproto.events import Ping

__all__ = [
    "DEFAULT_TEXT",
    "MockBehaviour",
    "MockConnection",
    "MockUpstream",
    "open_mock_upstream",
    "realtime_usage",
    "responses_usage",
]

Mode = Literal["realtime", "responses", "echo"]
# When a one-shot fault frame is sent: right after the handshake, or after the first
# message from the peer has been received (and recorded).
Trigger = Literal["connect", "first_message"]

DEFAULT_TEXT = "Hello from the kt_trio mock upstream."

# trio-websocket's default limit is 1 MiB and it reads 4 KiB at a time, which turns a 1 MiB
# message into 256 reads; tests send multi-MiB frames to probe the gateway's own limits, so the
# mock must never be the side that refuses them.
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
RECEIVE_BUFFER_SIZE = 64 * 1024
# How many received messages trio-websocket's reader may buffer ahead of our handler. Enough
# that a burst of small frames (audio appends) does not stall the reader, small enough that a
# stalled or slow-reading connection pushes back on the peer through TCP, which is what the
# stall and slow-read faults are for.
MESSAGE_QUEUE_SIZE = 16
# A peer that opens TCP but never sends its upgrade request is dropped after this long.
CONNECT_TIMEOUT = 10.0
# Bound on our own closing handshake: we never wait on a peer that will not answer a close.
CLOSE_TIMEOUT = 1.0

# What a send or handshake step raises when the peer has gone; never an error for a mock.
_GONE = (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError)

_DEFAULT_REJECT_BODY = (
    b'{"error":{"type":"invalid_request_error","code":"mock_refused",'
    b'"message":"The mock upstream refused the handshake."}}'
)


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


@attrs.define(eq=False)
class MockConnection:
    """What the mock saw of one accepted connection. Appended to `MockUpstream.connections`
    right after the handshake; `messages` grows as frames arrive."""

    index: int
    path: str  # the request target, query included
    headers: list[tuple[str, str]]
    subprotocols: tuple[str, ...]
    mode: Mode
    behaviour: MockBehaviour
    messages: list[str | bytes] = attrs.field(factory=list)
    sent_count: int = 0
    # How it ended. closed_by is "peer" (code/reason as received, 1006 for a dropped TCP
    # connection), "mock" (the close_after fault; code/reason as sent) or "server" (the mock
    # was shut down). All None while the connection is open.
    closed_by: Literal["peer", "mock", "server"] | None = None
    close_code: int | None = None
    close_reason: str | None = None
    ended: trio.Event = attrs.field(factory=trio.Event)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def json_messages(self) -> list[dict[str, Any]]:
        """The text messages that parse as JSON objects, in order (a test convenience)."""
        out = []
        for message in self.messages:
            if isinstance(message, str):
                try:
                    event = json.loads(message)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    out.append(event)
        return out


class _MockWebSocket(WebSocketConnection):
    """A server connection whose automatic pong can be switched off (the no-pong fault).

    trio-websocket's reader task answers every ping itself; its handler table binds
    ``self._handle_ping_event`` when the reader starts, so overriding the method is the one
    place to intervene.
    """

    answer_pings: bool = True
    record: MockConnection | None = None

    async def _handle_ping_event(self, event: Ping) -> None:
        if self.answer_pings:
            await super()._handle_ping_event(event)


class MockUpstream:
    """A running mock server. Build it with `open_mock_upstream`.

    Assign `behaviour` at any time; each connection uses the behaviour in force when its
    handshake arrived.
    """

    def __init__(self, behaviour: MockBehaviour, host: str, port: int) -> None:
        self.behaviour = behaviour
        self.host = host
        self.port = port
        self.connections: list[MockConnection] = []
        # Upgrade requests seen, refused ones included.
        self.handshake_count = 0
        self._event_ids = itertools.count(1)
        self._ids = itertools.count(1)
        # Waiters park here and re-check their condition on every change; unpark_all on an
        # empty lot is nearly free, so notifying per message costs nothing when nobody waits.
        self._changed = trio.lowlevel.ParkingLot()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    # --- waiting without sleeping ---------------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` is true; it is re-checked after every recorded change."""
        while not predicate():
            await self._changed.park()

    async def wait_for_handshakes(self, n: int) -> None:
        await self.wait_until(lambda: self.handshake_count >= n)

    async def wait_for_connections(self, n: int) -> list[MockConnection]:
        await self.wait_until(lambda: len(self.connections) >= n)
        return self.connections

    async def wait_for_messages(self, n: int, conn: int = 0) -> MockConnection:
        """Wait until connection `conn` (in handshake order) has received `n` messages."""
        await self.wait_for_connections(conn + 1)
        record = self.connections[conn]
        await self.wait_until(lambda: len(record.messages) >= n)
        return record

    async def wait_for_close(self, conn: int = 0) -> MockConnection:
        """Wait until connection `conn` has ended; its close fields are then set."""
        await self.wait_for_connections(conn + 1)
        record = self.connections[conn]
        await record.ended.wait()
        return record

    def _notify(self) -> None:
        self._changed.unpark_all()

    # --- serving ------------------------------------------------------------------------------

    async def _serve_stream(self, stream: trio.SocketStream) -> None:
        ws = _MockWebSocket(
            stream,
            WSConnection(ConnectionType.SERVER),
            message_queue_size=MESSAGE_QUEUE_SIZE,
            max_message_size=MAX_MESSAGE_SIZE,
            receive_buffer_size=RECEIVE_BUFFER_SIZE,
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_reader, ws)
                request = None
                with trio.move_on_after(CONNECT_TIMEOUT):
                    request = await ws._get_request()
                if request is not None:
                    try:
                        await self._handle_request(request, ws)
                    except _GONE:
                        pass  # the peer went away; the reader records how
                # The handler is done (peer closed, or we closed, or we refused): stop reading.
                nursery.cancel_scope.cancel()
        finally:
            # Server shutdown cancels us: drop the socket at once rather than wait on the peer.
            await trio.aclose_forcefully(stream)

    async def _run_reader(self, ws: _MockWebSocket) -> None:
        try:
            await ws._reader_task()
        finally:
            record = ws.record
            if record is not None and not record.ended.is_set():
                reason = ws.closed
                if record.closed_by is None:
                    record.closed_by = "peer" if reason is not None else "server"
                    if reason is not None:
                        record.close_code, record.close_reason = reason.code, reason.reason
                record.ended.set()
                self._notify()

    async def _handle_request(self, request: WebSocketRequest, ws: _MockWebSocket) -> None:
        behaviour = _with_query_overrides(self.behaviour, request.path)
        self.handshake_count += 1
        self._notify()
        if behaviour.handshake_delay > 0:
            await trio.sleep(behaviour.handshake_delay)
        if behaviour.reject_status is not None:
            await request.reject(behaviour.reject_status, body=behaviour.reject_body)
            return
        offered = request.proposed_subprotocols
        chosen = behaviour.subprotocol if behaviour.subprotocol in offered else None
        ws.answer_pings = behaviour.answer_pings
        await request.accept(subprotocol=chosen)
        path = request.path
        mode = behaviour.mode
        if mode == "realtime" and urlsplit(path).path.rstrip("/").endswith("/responses"):
            mode = "responses"
        record = MockConnection(
            index=len(self.connections),
            path=path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers],
            subprotocols=tuple(offered),
            mode=mode,
            behaviour=behaviour,
        )
        ws.record = record
        self.connections.append(record)
        self._notify()
        await _Session(self, ws, record, behaviour).run()


class _Session:
    """One accepted connection's conversation, in the mode chosen at handshake time."""

    def __init__(
        self, server: MockUpstream, ws: _MockWebSocket, record: MockConnection, behaviour: MockBehaviour
    ) -> None:
        self.server = server
        self.ws = ws
        self.record = record
        self.behaviour = behaviour
        self.responses_started = 0
        self.sequence = itertools.count(0)  # Responses-mode sequence_number
        query_model = record.query.get("model", [None])[0]
        self.model = query_model or behaviour.model
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": f"sess_mock{next(server._ids)}",
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {"type": "server_vad"},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
            },
            "include": None,
        }
        self.conversation_id = f"conv_mock{next(server._ids)}"
        self.last_item_id: str | None = None
        # The streaming response a response.cancel would interrupt (only with delta_delay > 0).
        self.active: tuple[trio.CancelScope, str] | None = None

    # --- sending --------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_mock{next(self.server._ids)}"

    async def send_raw(self, message: str | bytes) -> None:
        await self.ws.send_message(message)
        self.record.sent_count += 1

    async def send_event(self, event: dict[str, Any]) -> None:
        """Send a realtime server event; ``event_id`` is filled in here so none is ever missed."""
        event = {"event_id": f"event_{next(self.server._event_ids):08d}", **event}
        await self.send_raw(json.dumps(event, separators=(",", ":")))

    async def send_responses_event(self, event: dict[str, Any]) -> None:
        event = {**event, "sequence_number": next(self.sequence)}
        await self.send_raw(json.dumps(event, separators=(",", ":")))

    async def send_fault_frames(self, trigger: Trigger) -> None:
        b = self.behaviour
        if b.oversized_size is not None and b.oversized_on == trigger:
            await self.send_raw(_oversized_frame(b.oversized_size))
        if b.invalid_json_on == trigger:
            await self.send_raw('{"type":"response.output_text.delta","delta":"unterminated')

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        b = self.behaviour
        if b.stall:
            # Never read, never send; trio-websocket's reader still runs (and still pongs unless
            # answer_pings is off) until its small queue fills, then TCP pushes back. The reader
            # ends when the peer goes away, which ends the connection record.
            await self.record.ended.wait()
            return
        if b.close_after == 0:
            await self.close_by_mock()
            return
        try:
            await self._converse()
        except* _GONE:
            pass  # the peer went away mid-send; the reader task records how the connection ended

    async def _converse(self) -> None:
        b = self.behaviour
        async with trio.open_nursery() as nursery:
            if self.record.mode == "realtime":
                await self.send_event({"type": "session.created", "session": self.session})
            await self.send_fault_frames("connect")
            while True:
                if b.read_delay > 0:
                    await trio.sleep(b.read_delay)
                try:
                    message = await self.ws.get_message()
                except ConnectionClosed:
                    break
                self.record.messages.append(message)
                self.server._notify()
                received = len(self.record.messages)
                if b.close_after is not None and received >= b.close_after:
                    await self.close_by_mock()
                    break
                if received == 1:
                    await self.send_fault_frames("first_message")
                await self.handle(message, nursery)
            nursery.cancel_scope.cancel()

    async def close_by_mock(self) -> None:
        b = self.behaviour
        self.record.closed_by = "mock"
        self.record.close_code, self.record.close_reason = b.close_code, b.close_reason
        # aclose waits for the peer's close frame; never wait long on a peer that ignores it.
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self.ws.aclose(b.close_code, b.close_reason)

    async def handle(self, message: str | bytes, nursery: trio.Nursery) -> None:
        mode = self.record.mode
        if mode == "echo":
            await self.send_raw(message)
            return
        event: Any = None
        if isinstance(message, str):
            try:
                event = json.loads(message)
            except ValueError:
                event = None
        if not isinstance(event, dict):
            await self.send_error("invalid_json", "Expected a JSON object text frame.", None)
            return
        kind = event.get("type")
        client_event_id = event.get("event_id")
        if mode == "responses":
            if kind == "response.create":
                await self.stream_responses_response(event)
            return
        if kind == "session.update":
            update = event.get("session")
            if isinstance(update, dict):
                self.session.update(update)
            await self.send_event({"type": "session.updated", "session": self.session})
        elif kind == "conversation.item.create":
            await self.add_item(event)
        elif kind == "input_audio_buffer.commit":
            item_id = self._new_id("item")
            await self.send_event(
                {
                    "type": "input_audio_buffer.committed",
                    "previous_item_id": self.last_item_id,
                    "item_id": item_id,
                }
            )
            self.last_item_id = item_id
            if self.behaviour.transcription_usage is not None:
                await self.send_event(
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": item_id,
                        "content_index": 0,
                        "transcript": self.behaviour.transcription_text,
                        "usage": transcription_usage(self.behaviour.transcription_usage),
                    }
                )
        elif kind == "input_audio_buffer.clear":
            await self.send_event({"type": "input_audio_buffer.cleared"})
        elif kind == "response.create":
            if self.active is not None:
                await self.send_error(
                    "conversation_already_has_active_response",
                    "Conversation already has an active response in progress.",
                    client_event_id,
                )
            elif self.behaviour.delta_delay > 0:
                scope = trio.CancelScope()
                response_id = self._new_id("resp")
                self.active = (scope, response_id)
                nursery.start_soon(self._stream_in_background, scope, response_id)
            else:
                await self.stream_realtime_response(trio.CancelScope(), self._new_id("resp"))
        elif kind == "response.cancel":
            if self.active is not None:
                self.active[0].cancel()  # the streaming task sends the cancelled response.done
            else:
                await self.send_event(
                    {
                        "type": "response.done",
                        "response": self._realtime_response(self._new_id("resp"), "cancelled"),
                    }
                )
        # input_audio_buffer.append and anything else: silent, like the real API for append.

    async def send_error(self, code: str, message: str, client_event_id: Any) -> None:
        await self.send_event(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": client_event_id,
                },
            }
        )

    async def add_item(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        item = dict(item) if isinstance(item, dict) else {}
        item.setdefault("id", self._new_id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        previous = event.get("previous_item_id", self.last_item_id)
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send_event({"type": kind, "previous_item_id": previous, "item": item})
        self.last_item_id = item["id"]

    # --- realtime responses ---------------------------------------------------------------------

    def _message_item(self, item_id: str, text: str, transcript: str | None) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "output_text", "text": text}]
        if transcript is not None:
            content.append({"type": "output_audio", "transcript": transcript})
        return {
            "id": item_id,
            "type": "message",
            "object": "realtime.item",
            "status": "completed",
            "role": "assistant",
            "content": content,
        }

    def _realtime_response(
        self,
        response_id: str,
        status: str,
        usage: dict[str, Any] | None = None,
        output: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        status_details = None
        if status == "cancelled":
            status_details = {"type": "cancelled", "reason": "client_cancelled"}
        return {
            "object": "realtime.response",
            "id": response_id,
            "status": status,
            "status_details": status_details,
            "output": output or [],
            "conversation_id": self.conversation_id,
            "output_modalities": self.session.get("output_modalities", ["audio"]),
            "max_output_tokens": "inf",
            "audio": {"output": self.session["audio"]["output"]},
            "usage": usage,
            "metadata": None,
        }

    async def _stream_in_background(self, scope: trio.CancelScope, response_id: str) -> None:
        try:
            await self.stream_realtime_response(scope, response_id)
        except _GONE:
            pass  # the receive loop sees the same closed connection and ends the session

    async def stream_realtime_response(self, scope: trio.CancelScope, response_id: str) -> None:
        b = self.behaviour
        index = self.responses_started
        self.responses_started += 1
        item_id = self._new_id("item")
        deltas = b.text_deltas()
        transcript = b.transcript()
        await self.send_event(
            {"type": "response.created", "response": self._realtime_response(response_id, "in_progress")}
        )
        with scope:
            where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
            for delta in deltas:
                if b.delta_delay > 0:
                    await trio.sleep(b.delta_delay)
                await self.send_event({"type": "response.output_text.delta", **where, "delta": delta})
            await self.send_event({"type": "response.output_text.done", **where, "text": "".join(deltas)})
            if transcript:
                where = {**where, "content_index": 1}
                for delta in transcript:
                    if b.delta_delay > 0:
                        await trio.sleep(b.delta_delay)
                    await self.send_event({"type": "response.output_audio_transcript.delta", **where, "delta": delta})
                await self.send_event(
                    {
                        "type": "response.output_audio_transcript.done",
                        **where,
                        "transcript": "".join(transcript),
                    }
                )
        self.active = None
        status = "cancelled" if scope.cancelled_caught else "completed"
        output = None
        if b.include_output_items:
            output = [self._message_item(item_id, "".join(deltas), "".join(transcript) if transcript else None)]
        self.last_item_id = item_id
        await self.send_event(
            {
                "type": "response.done",
                "response": self._realtime_response(response_id, status, realtime_usage(b, index), output),
            }
        )

    # --- Responses API --------------------------------------------------------------------------

    async def stream_responses_response(self, request: dict[str, Any]) -> None:
        b = self.behaviour
        index = self.responses_started
        self.responses_started += 1
        response_id = self._new_id("resp")
        item_id = self._new_id("msg")
        model = request.get("model") or self.model
        deltas = b.text_deltas()
        text = "".join(deltas)
        response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": 0,
            "status": "in_progress",
            "model": model,
            "output": [],
            "previous_response_id": request.get("previous_response_id"),
            "usage": None,
        }
        await self.send_responses_event({"type": "response.created", "response": response})
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        for delta in deltas:
            if b.delta_delay > 0:
                await trio.sleep(b.delta_delay)
            await self.send_responses_event(
                {"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []}
            )
        await self.send_responses_event({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        output = []
        if b.include_output_items:
            output = [
                {
                    "id": item_id,
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        done = {**response, "status": "completed", "output": output, "usage": responses_usage(b, index)}
        await self.send_responses_event({"type": "response.completed", "response": done})


def _oversized_frame(size: int) -> str:
    """A text frame of exactly `size` characters: a JSON delta event padded to size if it fits."""
    head = '{"type":"response.output_text.delta","event_id":"event_oversized","delta":"'
    tail = '"}'
    pad = size - len(head) - len(tail)
    if pad < 0:
        return "x" * size
    return head + "x" * pad + tail


@asynccontextmanager
async def open_mock_upstream(
    behaviour: MockBehaviour | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[MockUpstream]:
    """Serve a mock upstream on (host, port) for the duration of the block.

    Port 0 picks a free port (read it from ``mock.port`` / ``mock.url``). Leaving the block
    cancels the listener and every connection at once; peers see the TCP connection drop.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound_port = listeners[0].socket.getsockname()[1]
    mock = MockUpstream(behaviour or MockBehaviour(), host, bound_port)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, mock._serve_stream, listeners)
            try:
                yield mock
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block's body runs inside our nursery, so its exception (a failed assert, Ctrl-C)
        # arrives wrapped in a group; the server tasks only ever end by our own cancel, so a
        # group of one is the body's exception, and callers' `pytest.raises` must see it bare.
        if len(group.exceptions) != 1:
            raise
        _reraise_bare(group.exceptions[0])


def _reraise_bare(exc: BaseException) -> NoReturn:
    """Raise `exc` without chaining the group it came out of as its __context__."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def _with_query_overrides(behaviour: MockBehaviour, path: str) -> MockBehaviour:
    """`behaviour` with the `mock_*` parameters of the request's query applied (module docstring)."""
    query = parse_qs(urlsplit(path).query)
    changes: dict[str, Any] = {}
    mode = query.get("mock_mode", [None])[0]
    if mode in ("realtime", "responses", "echo"):
        changes["mode"] = mode
    for name, key, convert in (
        ("close_after", "mock_close_after", int),
        ("close_code", "mock_close_code", int),
        ("close_reason", "mock_close_reason", str),
    ):
        value = query.get(key, [None])[0]
        if value is not None:
            try:
                changes[name] = convert(value)
            except ValueError:
                continue  # a malformed override is ignored, like an unknown parameter
    return attrs.evolve(behaviour, **changes) if changes else behaviour


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.mock_upstream",
        description="Run the kt_trio mock OpenAI Realtime / Responses WebSocket upstream.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--mode", choices=["realtime", "responses", "echo"], default="realtime")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="what the mock model says")
    args = parser.parse_args(argv)
    behaviour = MockBehaviour(mode=args.mode, text=args.text)

    async def serve() -> None:
        async with open_mock_upstream(behaviour, host=args.host, port=args.port) as mock:
            print(f"mock upstream ({args.mode}) listening on {mock.url}", flush=True)
            await trio.sleep_forever()

    try:
        trio.run(serve)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
