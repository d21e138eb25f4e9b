"""The /ws/events endpoint over real sockets on 127.0.0.1.

A tiny server reads each request head the way the gateway's front door does and hands the
connection to `serve_event_stream` through a `ReplayStream`; clients are trio-websocket, or a raw
wsproto client where the test needs one that does not read or does not answer pings.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import pytest
import trio
import wsproto
import wsproto.events as wse
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from kt_trio.config.schema import EventStream
from kt_trio.events import EventHub, SystemEvent, serve_event_stream
from kt_trio.records import BreakerTransition, BudgetAlert, ResponseUsage, TokenUsage
from kt_trio.server.replay_stream import ReplayStream
from kt_trio.wire.handshake import read_request_head
from tests.helpers import rejected_status

TOKEN = "evt-token-0123456789"


@attrs.define
class EventServer:
    url: str
    port: int
    hub: EventHub
    refused: list[str]
    finished: trio.MemoryReceiveChannel[None]


@asynccontextmanager
async def event_server(
    settings: EventStream | None = None, *, hub: EventHub | None = None, deadline: float = 30
) -> AsyncIterator[EventServer]:
    """`deadline` bounds the whole test; under an autojump clock it is virtual time."""
    settings = settings or EventStream()
    hub = hub or EventHub(settings.channel_capacity)
    refused: list[str] = []
    # One slot per connection a test opens; unbounded would hide a handler that never ends.
    send_finished, finished = trio.open_memory_channel[None](64)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            head, received = await read_request_head(stream)  # type: ignore[arg-type]
            if head is not None:
                await serve_event_stream(hub, settings, ReplayStream(stream, received), head, on_refused=refused.append)
        finally:
            send_finished.send_nowait(None)

    with trio.fail_after(deadline):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            yield EventServer(f"ws://127.0.0.1:{port}/ws/events", port, hub, refused, finished)
            nursery.cancel_scope.cancel()


class RawClient:
    """A sans-IO WebSocket client that reads only when told to and answers pings only if asked."""

    def __init__(self, stream: trio.SocketStream, conn: wsproto.WSConnection) -> None:
        self.stream = stream
        self.conn = conn
        self.answer_pings = True
        self._text: list[str] = []

    @classmethod
    async def connect(cls, port: int, target: str = "/ws/events") -> RawClient:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(conn.send(wse.Request(host="127.0.0.1", target=target)))
        client = cls(stream, conn)
        event = await client.next_event()
        assert isinstance(event, wse.AcceptConnection), event
        return client

    async def next_event(self) -> wse.Event | None:
        """The next handshake, text-message, ping or close event; None on EOF."""
        while True:
            for event in self.conn.events():
                if isinstance(event, wse.Ping) and self.answer_pings:
                    await self.stream.send_all(self.conn.send(event.response()))
                if isinstance(event, wse.TextMessage):
                    self._text.append(event.data)
                    if not event.message_finished:
                        continue
                    event = wse.TextMessage(data="".join(self._text))
                    self._text.clear()
                return event
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.conn.receive_data(data)

    async def message(self) -> dict[str, Any]:
        while True:
            event = await self.next_event()
            if isinstance(event, wse.TextMessage):
                return json.loads(event.data)
            assert isinstance(event, wse.Ping), event


def settings(**kw: Any) -> EventStream:
    return EventStream(**kw)


def budget(i: int, pad: str = "") -> BudgetAlert:
    return BudgetAlert("s1" + pad, 0.5, i, 10**9, False)


# -- delivery ---------------------------------------------------------------------------------


async def test_subscriber_receives_published_events_with_filters() -> None:
    async with event_server() as srv:
        async with open_websocket_url(srv.url + "?types=usage,circuit_breaker") as ws:
            srv.hub.publish("s1", budget(1))  # filtered out
            srv.hub.publish("s1", ResponseUsage("s1", "mock", "gpt-realtime", TokenUsage(input_tokens=7)))
            srv.hub.publish(None, BreakerTransition("mock", "closed", "open", "x"))
            first = json.loads(await ws.get_message())
            second = json.loads(await ws.get_message())
        assert first["type"] == "usage" and first["payload"]["usage"]["input_tokens"] == 7
        assert second["type"] == "circuit_breaker" and second["payload"]["to"] == "open"
        async with open_websocket_url(srv.url + "?session=s2") as ws:
            srv.hub.publish("s1", budget(1))
            srv.hub.publish("s2", BudgetAlert("s2", 0.8, 5, 10, False))
            assert json.loads(await ws.get_message())["payload"]["session_id"] == "s2"


async def test_unknown_type_filter_is_400() -> None:
    async with event_server() as srv:
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(srv.url + "?types=usage,bogus"):
                pass
        assert rejected.value.status_code == 400


async def test_slow_reader_gets_exact_lag_and_never_slows_publish() -> None:
    """A client that does not read its socket: publishing 10,000 large events stays sync and
    immediate; when it finally reads, every `lagged` count equals the gap in sequence numbers."""
    async with event_server(settings(channel_capacity=64)) as srv:
        client = await RawClient.connect(srv.port)
        watcher = srv.hub.subscribe()  # an in-process subscriber that keeps up
        pad = "x" * 4096  # 10,000 × 4 KiB = 40 MiB: far beyond the ring plus the kernel's buffers
        seen_by_watcher = 0
        for batch in range(100):
            for i in range(batch * 100, batch * 100 + 100):
                srv.hub.publish(None, SystemEvent("config_reloaded", {"seq": i, "pad": pad}))  # sync
                while watcher.receive_nowait() is not None:
                    seen_by_watcher += 1
            await trio.sleep(0)  # let the endpoint's sender run (and block on the full socket)
        assert seen_by_watcher == 10_000
        srv.hub.publish(None, SystemEvent("shutdown", {"seq": 10_000}))
        expected, total_missed, lagged = 0, 0, 0
        while expected <= 10_000:
            message = await client.message()
            if message["type"] == "lagged":
                lagged += 1
                total_missed += message["payload"]["missed"]
                expected += message["payload"]["missed"]
                continue
            assert message["payload"]["seq"] == expected
            expected += 1
        assert lagged >= 1 and total_missed == srv.hub.dropped_total > 0


async def test_hub_close_ends_the_stream_with_1001() -> None:
    async with event_server() as srv:
        async with open_websocket_url(srv.url) as ws:
            srv.hub.publish(None, SystemEvent("shutdown"))
            srv.hub.close()
            assert json.loads(await ws.get_message())["payload"]["event"] == "shutdown"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
        assert closed.value.reason.code == 1001


# -- refusals ---------------------------------------------------------------------------------


async def test_auth_token_and_cookie_with_origin() -> None:
    s = settings(require_auth=True, tokens=("other-token", TOKEN), allowed_origins=("https://dash.example.com",))
    async with event_server(s) as srv:
        assert await rejected_status(srv.url) == 401
        assert await rejected_status(srv.url + "?token=wrong") == 401
        assert await rejected_status(srv.url + "?token=") == 401
        assert await rejected_status(srv.url + f"?token={TOKEN}") is None
        cookie = ("Cookie", f"theme=dark; kt_session={TOKEN}")
        assert await rejected_status(srv.url, [cookie, ("Origin", "https://dash.example.com")]) is None
        assert await rejected_status(srv.url, [cookie, ("Origin", "https://evil.example.net")]) == 403
        assert await rejected_status(srv.url, [cookie]) == 403  # a cookie without an Origin proves nothing
        nope = [("Cookie", "kt_session=nope"), ("Origin", "https://dash.example.com")]
        assert await rejected_status(srv.url, nope) == 401
        # Any browser on another origin is refused, a ?token= too (issue 13): the stream is not
        # for pages of other sites, whoever gave them the token.
        assert await rejected_status(srv.url + f"?token={TOKEN}", [("Origin", "https://evil.example.net")]) == 403
        assert await rejected_status(srv.url + f"?token={TOKEN}", [("Origin", "https://dash.example.com")]) is None
        assert srv.refused.count("unauthorized") == 4 and srv.refused.count("origin_not_allowed") == 3


async def test_empty_configured_token_never_matches() -> None:
    async with event_server(settings(require_auth=True, tokens=("",))) as srv:
        assert await rejected_status(srv.url + "?token=") == 401


async def test_max_connections_503_then_a_slot_frees() -> None:
    async with event_server(settings(max_connections=1)) as srv:
        async with open_websocket_url(srv.url):
            assert await rejected_status(srv.url) == 503
            await srv.finished.receive()  # the refused connection's handler is done
        await srv.finished.receive()  # the first subscriber's handler is done
        assert srv.hub.subscriber_count == 0
        assert await rejected_status(srv.url) is None
        assert srv.refused == ["too_many_subscribers"]


async def test_disabled_is_404() -> None:
    async with event_server(settings(enabled=False)) as srv:
        assert await rejected_status(srv.url) == 404


async def test_zero_max_connections_is_unlimited() -> None:
    async with event_server(settings(max_connections=0)) as srv:
        async with open_websocket_url(srv.url), open_websocket_url(srv.url):
            assert srv.hub.subscriber_count == 2


# -- keepalive --------------------------------------------------------------------------------


async def test_no_pong_closes_with_1011(autojump_clock: trio.abc.Clock) -> None:
    async with event_server(settings(ping_interval_secs=30, pong_timeout_secs=60), deadline=1000) as srv:
        client = await RawClient.connect(srv.port)
        client.answer_pings = False
        start = trio.current_time()
        event = await client.next_event()
        assert isinstance(event, wse.Ping)
        assert trio.current_time() - start == pytest.approx(30)
        event = await client.next_event()
        assert isinstance(event, wse.CloseConnection) and event.code == 1011
        assert trio.current_time() - start == pytest.approx(90)


async def test_answered_pings_keep_the_stream_open(autojump_clock: trio.abc.Clock) -> None:
    async with event_server(settings(ping_interval_secs=30, pong_timeout_secs=60), deadline=1000) as srv:
        client = await RawClient.connect(srv.port)
        for _ in range(5):
            assert isinstance(await client.next_event(), wse.Ping)  # answered by next_event
        srv.hub.publish("s1", budget(1))
        assert (await client.message())["type"] == "budget"
        assert srv.hub.subscriber_count == 1
