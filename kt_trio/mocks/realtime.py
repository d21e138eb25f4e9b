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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, NoReturn
from urllib.parse import parse_qs, urlsplit

import attrs
import trio
from trio_websocket import WebSocketConnection, WebSocketRequest
from wsproto import ConnectionType, WSConnection
from wsproto.events import Ping

from kt_trio.mocks.behaviour import (
    DEFAULT_TEXT,
    MockBehaviour,
    Mode,
    realtime_usage,
    responses_usage,
    transcription_usage,
)
from kt_trio.mocks.realtime_session import _GONE, MockSession

__all__ = [
    "DEFAULT_TEXT",
    "MockBehaviour",
    "MockConnection",
    "MockUpstream",
    "open_mock_upstream",
    "realtime_usage",
    "responses_usage",
    "transcription_usage",
]


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
        await MockSession(self, ws, record, behaviour).run()


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
        prog="python -m kt_trio.mocks.realtime",
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
