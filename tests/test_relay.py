"""The relay end to end: real gateway, real mock provider, real WebSocket clients on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour
from kt_trio.wire.frames import Opcode, encode_frame
from tests.conftest import count_tasks, running
from tests.helpers import http_get

BIG = 32 * 1024 * 1024  # client-side limit, above every message these tests send


async def _closed_code(ws) -> tuple[int, str]:
    """Reads until the gateway closes the connection; returns its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    return info.value.reason.code, info.value.reason.reason


async def test_realtime_round_trip_in_order() -> None:
    async with running() as gw:
        async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as ws:
            first = json.loads(await ws.get_message())
            assert first["type"] == "session.created"
            await ws.send_message(json.dumps({"type": "response.create", "event_id": "c1"}))
            types = []
            while not types or types[-1] != "response.done":
                types.append(json.loads(await ws.get_message())["type"])
        assert types[0] == "response.created"
        assert types.count("response.output_text.delta") == 4
        conn = gw.mock.connections[0]
        assert conn.path == "/v1/realtime?model=gpt-realtime"
        assert json.loads(conn.messages[0]) == {"type": "response.create", "event_id": "c1"}


async def test_text_and_binary_echo_are_byte_exact() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        async with open_websocket_url(gw.ws_url(), max_message_size=BIG) as ws:
            text = '{"type":"x","s":"héllo ✓"}'
            await ws.send_message(text)
            assert await ws.get_message() == text
            blob = bytes(range(256)) * 1000
            await ws.send_message(blob)
            assert await ws.get_message() == blob
            large = "a" * (900 * 1024)  # one frame received in place (recv_into path)
            await ws.send_message(large)
            assert await ws.get_message() == large
        assert gw.mock.connections[0].messages[:2] == [text, blob]


async def test_five_mib_provider_message_reaches_client() -> None:
    size = 5 * 1024 * 1024
    async with running(MockBehaviour(mode="realtime", oversized_size=size, oversized_on="connect")) as gw:
        async with open_websocket_url(gw.ws_url(), max_message_size=BIG) as ws:
            messages = [await ws.get_message(), await ws.get_message()]
            assert size in [len(m) for m in messages]


async def test_thousand_messages_keep_their_order() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        async with open_websocket_url(gw.ws_url(), message_queue_size=4) as ws:
            async with trio.open_nursery() as nursery:

                async def send_all() -> None:
                    for i in range(1000):
                        await ws.send_message(json.dumps({"type": "n", "i": i}))

                nursery.start_soon(send_all)
                got = [json.loads(await ws.get_message())["i"] for _ in range(1000)]
        assert got == list(range(1000))
        assert [json.loads(m)["i"] for m in gw.mock.connections[0].messages] == list(range(1000))


async def test_responses_route_picks_the_responses_target() -> None:
    async with running() as gw:
        async with open_websocket_url(gw.ws_url("/v1/responses", model="gpt-4.1-mini")) as ws:
            await ws.send_message(json.dumps({"type": "response.create", "input": "hi"}))
            kinds = []
            while not kinds or kinds[-1] != "response.completed":
                kinds.append(json.loads(await ws.get_message())["type"])
        assert gw.mock.connections[0].path == "/v1/responses?model=gpt-4.1-mini"


# -- close codes ---------------------------------------------------------------------------------


async def test_client_close_code_reaches_upstream_and_is_echoed() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("hi")
            assert await ws.get_message() == "hi"
            await ws.aclose(4000, "client says bye")
            assert ws.closed.code == 4000
        record = await gw.mock.wait_for_close(0)
        assert (record.close_code, record.close_reason) == (4000, "client says bye")
        await gw.gateway.wait_sessions(lambda n: n == 0)
        summary = gw.gateway.recent_summaries[-1]
        assert (summary.closed_by, summary.close_code) == ("client", 4000)


async def test_upstream_close_code_reaches_client() -> None:
    behaviour = MockBehaviour(mode="echo", close_after=1, close_code=4001, close_reason="provider done")
    async with running(behaviour) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("one")
            assert await _closed_code(ws) == (4001, "provider done")
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert gw.gateway.recent_summaries[-1].closed_by == "upstream"


async def test_idle_timeout_closes_both_legs_with_1001() -> None:
    async with running(MockBehaviour(mode="echo"), websocket={"idle_timeout_seconds": 0.3}) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("activity")
            await ws.get_message()
            assert await _closed_code(ws) == (1001, "idle timeout")
        record = await gw.mock.wait_for_close(0)
        assert record.close_code == 1001


async def test_idle_timeout_counts_from_the_last_message() -> None:
    """Messages keep a session open past its idle timeout; silence then closes it no sooner than
    the timeout after the last one (the pumps note activity, a timer acts on it)."""
    idle = 0.5
    async with running(MockBehaviour(mode="echo"), websocket={"idle_timeout_seconds": idle}) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            start = trio.current_time()
            while trio.current_time() - start < 2 * idle:  # well past one timeout, never silent for long
                last_sent = trio.current_time()
                await ws.send_message("activity")
                assert await ws.get_message() == "activity"
                await trio.sleep(idle / 5)
            assert await _closed_code(ws) == (1001, "idle timeout")
            assert trio.current_time() - last_sent >= idle
        assert gw.gateway.recent_summaries[-1].close_reason == "idle timeout"


async def test_keepalive_timeout_closes_with_1011() -> None:
    behaviour = MockBehaviour(mode="echo", answer_pings=False)
    # The shortest keepalive a config may set (ping and pong timeout >= 1 s, issue 13).
    async with running(behaviour, websocket={"ping_interval_secs": 1, "pong_timeout_secs": 1}) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            assert await _closed_code(ws) == (1011, "keepalive timeout")


async def test_keepalive_with_answering_peers_keeps_the_session() -> None:
    settings = {"ping_interval_secs": 1, "pong_timeout_secs": 1, "idle_timeout_seconds": 30}
    async with running(MockBehaviour(mode="echo"), websocket=settings) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("first")
            assert await ws.get_message() == "first"
            (session,) = gw.gateway.sessions
            # Both peers answer our pings; the session lives through more of them than fit in twice
            # the pong timeout (2 x 1 / 1 = 2), so it outlives that timeout over and over.
            # Bounded by the test deadline: a keepalive that never pings fails here, not by hanging.
            wanted = 3
            i = 0
            while min(session.client.pongs_received, session.upstream.pongs_received) < wanted:
                await trio.sleep(settings["ping_interval_secs"])
                await ws.send_message(str(i))
                assert await ws.get_message() == str(i)
                i += 1
            assert not ws.closed and session in gw.gateway.sessions  # still the same, live session


async def test_client_message_over_limit_gets_1009() -> None:
    async with running(MockBehaviour(mode="echo"), websocket={"max_message_size_bytes": 1024}) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("x" * 1024)  # at the limit: relayed
            assert len(await ws.get_message()) == 1024
            await ws.send_message("x" * 1025)
            assert (await _closed_code(ws))[0] == 1009
        record = await gw.mock.wait_for_close(0)
        assert record.close_code == 1001
        assert len(record.messages) == 1


async def test_provider_message_over_limit_gets_1009() -> None:
    behaviour = MockBehaviour(mode="echo", oversized_size=4096, oversized_on="connect")
    async with running(behaviour, websocket={"max_upstream_message_size_bytes": 2048}) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            code, reason = await _closed_code(ws)
            assert code == 1009 and "too big" in reason
        record = await gw.mock.wait_for_close(0)
        assert record.close_code == 1009


async def test_max_session_duration_closes_with_1001() -> None:
    async with running(MockBehaviour(mode="echo"), websocket={"max_session_secs": 0.3}) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            assert await _closed_code(ws) == (1001, "session time limit reached")


async def test_shutdown_closes_sessions_with_1001() -> None:
    async with running(MockBehaviour(mode="echo")) as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.send_message("hi")
            await ws.get_message()
            gw.gateway.shutdown()
            assert await _closed_code(ws) == (1001, "server shutting down")
        record = await gw.mock.wait_for_close(0)
        assert record.close_code == 1001
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert gw.gateway.admission.total_active == 0


# -- handshake refusals --------------------------------------------------------------------------


async def test_upstream_refusal_is_http_502_on_the_client_handshake() -> None:
    async with running(MockBehaviour(reject_status=403)) as gw:
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(gw.ws_url()):
                pass
        assert info.value.status_code == 502
        body = json.loads(info.value.body)
        assert body["error"]["code"] == "upstream_refused" and "403" in body["error"]["message"]


async def test_upstream_unreachable_is_502() -> None:
    async with running() as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()
        # A port nothing listens on: bind one, then close it.
        sock = trio.socket.socket()
        await sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
        sock.close()
        pack = gw.gateway.default_pack
        import attrs

        dead = attrs.evolve(pack.config.providers.targets[0], base_url=f"ws://127.0.0.1:{dead_port}/v1/realtime")
        pack.config = attrs.evolve(pack.config, providers=attrs.evolve(pack.config.providers, targets=(dead,)))
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(gw.ws_url()):
                pass
        assert info.value.status_code == 502
        assert json.loads(info.value.body)["error"]["code"] == "upstream_unreachable"


async def test_upstream_handshake_timeout_is_504() -> None:
    behaviour = MockBehaviour(handshake_delay=5.0)
    async with running(behaviour, websocket={"connect_timeout_secs": 0.2}) as gw:
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_url(gw.ws_url()):
                pass
        assert info.value.status_code == 504


async def test_unknown_model_and_path_are_404() -> None:
    async with running() as gw:
        for url in (gw.ws_url(model="no-such-model"), gw.ws_url("/v1/nothing")):
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(url):
                    pass
            assert info.value.status_code == 404
        assert gw.mock.handshake_count == 0


async def test_model_matches_target_id_too() -> None:
    async with running() as gw:
        async with open_websocket_url(gw.ws_url(model="mock-responses")) as ws:
            await ws.send_message(json.dumps({"type": "response.create"}))
            await ws.get_message()
        assert gw.mock.connections[0].path.startswith("/v1/responses")


# -- credentials and headers ---------------------------------------------------------------------


async def test_client_credentials_are_replaced_by_the_target_secret() -> None:
    async with running(secrets={"mock": "sk-target-secret"}) as gw:
        headers = [
            ("Authorization", "Bearer sk-client-own-key"),
            ("OpenAI-Beta", "realtime=v1"),
            ("X-Client-Request-Id", "t1"),
            ("X-Trace", "t2"),  # not on the allow-list (kt_trio/providers/headers.py)
        ]
        async with open_websocket_url(gw.ws_url(), extra_headers=headers) as ws:
            await ws.get_message()
        conn = gw.mock.connections[0]
        assert conn.header("authorization") == "Bearer sk-target-secret"
        assert conn.header("openai-beta") == "realtime=v1"
        assert conn.header("x-client-request-id") == "t1"
        assert conn.header("x-trace") is None
        assert "sk-client-own-key" not in repr(conn.headers)


async def test_openai_beta_is_never_added() -> None:
    async with running() as gw:
        async with open_websocket_url(gw.ws_url()) as ws:
            await ws.get_message()
        assert gw.mock.connections[0].header("openai-beta") is None


async def test_browser_key_subprotocol_is_dropped_and_realtime_answered() -> None:
    async with running(MockBehaviour(subprotocol=None)) as gw:
        offered = ["realtime", "openai-insecure-api-key.sk-browser-key"]
        async with open_websocket_url(gw.ws_url(), subprotocols=offered) as ws:
            await ws.get_message()
            assert ws.subprotocol == "realtime"
        conn = gw.mock.connections[0]
        assert list(conn.subprotocols) == ["realtime"]
        assert "sk-browser-key" not in repr(conn.headers)


async def test_http_routes_share_the_port() -> None:
    async with running() as gw:
        status, body = await http_get(gw.port, "/healthz")
        assert status == 200
        assert body.endswith(b'{"status": "ok"}')


# -- load, backpressure, leaks -------------------------------------------------------------------


async def test_hundred_concurrent_sessions() -> None:
    async with running() as gw:
        done = []

        async def one(i: int) -> None:
            async with open_websocket_url(gw.ws_url()) as ws:
                await ws.get_message()
                await ws.send_message(json.dumps({"type": "response.create", "event_id": f"e{i}"}))
                while json.loads(await ws.get_message())["type"] != "response.done":
                    pass
                done.append(i)

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(one, i)
        assert sorted(done) == list(range(100))
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert len(gw.mock.connections) == 100


async def test_no_task_outlives_its_session() -> None:
    async with running(MockBehaviour(mode="echo"), websocket={"idle_timeout_seconds": 0.2}) as gw:
        baseline = count_tasks()

        async def client_close() -> None:
            async with open_websocket_url(gw.ws_url()) as ws:
                await ws.send_message("x")
                await ws.get_message()

        async def client_vanishes() -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
            await stream.send_all(
                b"GET /v1/realtime HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await stream.receive_some(4096)
            await stream.aclose()

        async def idle_out() -> None:
            async with open_websocket_url(gw.ws_url()) as ws:
                await _closed_code(ws)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(client_close)
                nursery.start_soon(client_vanishes)
                nursery.start_soon(idle_out)
        await gw.gateway.wait_sessions(lambda n: n == 0)
        await gw.mock.wait_until(lambda: all(c.ended.is_set() for c in gw.mock.connections))
        # Connection handlers finish right after their session: wait, bounded, for them to unwind.
        with trio.move_on_after(5):
            while count_tasks() != baseline:
                await trio.sleep(0.01)
        assert count_tasks() == baseline
        reasons = sorted(s.close_reason for s in gw.gateway.recent_summaries)
        assert reasons.count("idle timeout") == 5
        # Admission counted each session once and released it once, however it ended.
        assert gw.gateway.admission.total_active == 0


async def _raw_upgrade(port: int, path: str = "/v1/realtime") -> trio.SocketStream:
    """A WebSocket client made of a bare socket: it sends what a test says and reads nothing."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(
        f"GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some(1)
    assert head.startswith(b"HTTP/1.1 101")
    return stream


async def test_slow_client_is_backpressured_and_still_idles_out() -> None:
    """A client that never reads: the gateway must not buffer for it without bound."""
    async with running(MockBehaviour(mode="echo"), websocket={"idle_timeout_seconds": 1.0}) as gw:
        stream = await _raw_upgrade(gw.port)
        frame = encode_frame(Opcode.TEXT, b"x" * 65536, mask=b"abcd")
        sent = 0
        # The echo comes back through the gateway to a client that reads nothing. Once every
        # buffer on the way is full, our own send blocks: that is the backpressure.
        while True:
            with trio.move_on_after(0.5) as blocked:
                await stream.send_all(frame)
            if blocked.cancelled_caught:
                break
            sent += len(frame)
            assert sent < 256 * 1024 * 1024, "the gateway kept accepting data nobody reads"
        await gw.gateway.wait_sessions(lambda n: n == 0)
        await trio.aclose_forcefully(stream)
        summary = gw.gateway.recent_summaries[-1]
        assert summary.close_reason == "idle timeout"
        # Socket buffers on loopback hold a few MiB each way; far below what an unbounded
        # gateway buffer would have taken in.
        assert sent < 64 * 1024 * 1024
