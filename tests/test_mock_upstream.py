"""The mock upstream, driven over real sockets on 127.0.0.1 by trio-websocket clients."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from kt_trio.mocks.realtime import (
    MockBehaviour,
    open_mock_upstream,
    realtime_usage,
    responses_usage,
)

# Every wait in these tests is bounded so a regression fails fast instead of hanging.
TIMEOUT = 5


async def recv_json(ws: WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    assert isinstance(message, str)
    event = json.loads(message)
    assert isinstance(event, dict)
    return event


async def until(ws: WebSocketConnection, kind: str, limit: int = 100) -> list[dict[str, Any]]:
    """Read events up to and including the first of type `kind`."""
    seen = []
    for _ in range(limit):
        event = await recv_json(ws)
        seen.append(event)
        if event["type"] == kind:
            return seen
    raise AssertionError(f"no {kind} in {limit} events")


async def test_realtime_round_trip_records_and_streams() -> None:
    behaviour = MockBehaviour(deltas=("Call me at 415-", "555-", "0134."), usage_step=7)
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(behaviour) as mock:
            url = mock.url + "/v1/realtime?model=gpt-test"
            headers = [("Authorization", "Bearer sk-test")]
            async with open_websocket_url(url, extra_headers=headers, subprotocols=["realtime"]) as ws:
                assert ws.subprotocol == "realtime"
                created = await recv_json(ws)
                assert created["type"] == "session.created"
                assert created["session"]["model"] == "gpt-test"
                assert created["session"]["type"] == "realtime"

                await ws.send_message(json.dumps({"type": "session.update", "session": {"instructions": "x"}}))
                updated = await recv_json(ws)
                assert updated["type"] == "session.updated"
                assert updated["session"]["instructions"] == "x"

                item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
                await ws.send_message(json.dumps({"type": "conversation.item.create", "item": item}))
                added, done = await recv_json(ws), await recv_json(ws)
                assert [added["type"], done["type"]] == ["conversation.item.added", "conversation.item.done"]
                assert added["item"]["content"] == item["content"]

                # append is silent: the next event seen belongs to the response.
                await ws.send_message(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA"}))
                events = []
                for _ in range(2):
                    await ws.send_message(json.dumps({"type": "response.create"}))
                    events += await until(ws, "response.done")

            record = await mock.wait_for_close(0)

    kinds = [e["type"] for e in events[: len(events) // 2]]
    assert kinds == [
        "response.created",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        *["response.output_audio_transcript.delta"] * 3,
        "response.output_audio_transcript.done",
        "response.done",
    ]
    all_ids = [created["event_id"], updated["event_id"], added["event_id"], done["event_id"]]
    all_ids += [e["event_id"] for e in events]
    assert len(set(all_ids)) == len(all_ids)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"][:3]
    assert "".join(d["delta"] for d in deltas) == "Call me at 415-555-0134."
    assert {d["response_id"] for d in deltas} == {events[0]["response"]["id"]}
    assert all({"item_id", "output_index", "content_index"} <= d.keys() for d in deltas)
    text_done = next(e for e in events if e["type"] == "response.output_text.done")
    assert text_done["text"] == "Call me at 415-555-0134."

    dones = [e for e in events if e["type"] == "response.done"]
    assert [d["response"]["status"] for d in dones] == ["completed", "completed"]
    usages = [d["response"]["usage"] for d in dones]
    assert usages == [realtime_usage(behaviour, 0), realtime_usage(behaviour, 1)]
    assert usages[0]["input_tokens"] != usages[1]["input_tokens"]
    details = usages[0]["input_token_details"]
    assert details["cached_tokens"] == 64 and details["cached_tokens_details"]["audio_tokens"] == 16
    assert usages[0]["total_tokens"] == usages[0]["input_tokens"] + usages[0]["output_tokens"]

    assert record.path == "/v1/realtime?model=gpt-test"
    assert record.query == {"model": ["gpt-test"]}
    assert record.header("authorization") == "Bearer sk-test"
    assert record.subprotocols == ("realtime",)
    assert [m["type"] for m in record.json_messages()] == [
        "session.update",
        "conversation.item.create",
        "input_audio_buffer.append",
        "response.create",
        "response.create",
    ]
    assert (record.closed_by, record.close_code) == ("peer", 1000)
    assert mock.handshake_count == 1


async def test_response_cancel_mid_stream() -> None:
    # delta_delay only paces the stream so the cancel lands mid-response; no test timing relies on it.
    behaviour = MockBehaviour(delta_count=50, text="x" * 50, delta_delay=0.01, transcript_deltas=())
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(behaviour) as mock:
            async with open_websocket_url(mock.url + "/v1/realtime") as ws:
                await until(ws, "session.created")
                await ws.send_message(json.dumps({"type": "response.create"}))
                await until(ws, "response.output_text.delta")
                await ws.send_message(json.dumps({"type": "response.cancel"}))
                events = await until(ws, "response.done")
                assert events[-1]["response"]["status"] == "cancelled"
                assert sum(e["type"] == "response.output_text.delta" for e in events) < 49
                # With nothing in progress, a cancel still answers a cancelled response.done.
                await ws.send_message(json.dumps({"type": "response.cancel"}))
                assert (await until(ws, "response.done"))[-1]["response"]["status"] == "cancelled"


async def test_responses_mode_by_path() -> None:
    behaviour = MockBehaviour(text="hello there", reasoning_tokens=5)
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(behaviour) as mock:
            async with open_websocket_url(mock.url + "/v1/responses") as ws:
                await ws.send_message(json.dumps({"type": "response.create", "model": "gpt-5", "input": "hi"}))
                events = await until(ws, "response.completed")
    assert events[0]["type"] == "response.created"  # no session.created in this mode
    assert events[0]["response"]["model"] == "gpt-5"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "hello there"
    assert events[-2] == {**events[-2], "type": "response.output_text.done", "text": "hello there"}
    assert events[-1]["response"]["usage"] == responses_usage(behaviour, 0)
    assert events[-1]["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] == 5
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


async def test_echo_text_and_binary() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
            async with open_websocket_url(mock.url + "/anything") as ws:
                big = b"\x00\xff" * (512 * 1024)  # 1 MiB: above trio-websocket's default limit
                for message in ["hello", b"\x01\x02", big]:
                    await ws.send_message(message)
                # The client's default 1 MiB limit would refuse the echo of `big`; read the small ones.
                assert await ws.get_message() == "hello"
                assert await ws.get_message() == b"\x01\x02"
            record = await mock.wait_for_messages(3)
    assert record.messages == ["hello", b"\x01\x02", big]


async def test_many_concurrent_connections() -> None:
    async def client(url: str, i: int) -> None:
        async with open_websocket_url(url) as ws:
            for j in range(10):
                await ws.send_message(f"{i}:{j}")
                assert await ws.get_message() == f"{i}:{j}"

    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(client, mock.url, i)
            assert len(mock.connections) == 100
            assert sum(len(c.messages) for c in mock.connections) == 1000


async def test_refused_handshake() -> None:
    behaviour = MockBehaviour(reject_status=429, reject_body=b'{"error":"slow down"}')
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(behaviour) as mock:
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(mock.url + "/v1/realtime"):
                    pass
            assert caught.value.status_code == 429
            assert caught.value.body == b'{"error":"slow down"}'
            assert mock.handshake_count == 1
            assert mock.connections == []

            # Behaviour changes apply to the next connection.
            mock.behaviour = attrs.evolve(behaviour, reject_status=None)
            async with open_websocket_url(mock.url + "/v1/realtime") as ws:
                assert (await recv_json(ws))["type"] == "session.created"
            assert mock.handshake_count == 2


async def test_close_after_n_messages() -> None:
    behaviour = MockBehaviour(mode="echo", close_after=2, close_code=4001, close_reason="bye")
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(behaviour) as mock:
            async with open_websocket_url(mock.url) as ws:
                await ws.send_message("one")
                assert await ws.get_message() == "one"
                await ws.send_message("two")  # recorded, not answered: the mock closes instead
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.reason is not None
                assert (caught.value.reason.code, caught.value.reason.reason) == (4001, "bye")
            record = await mock.wait_for_close(0)
    assert record.messages == ["one", "two"]
    assert (record.closed_by, record.close_code, record.close_reason) == ("mock", 4001, "bye")


async def test_oversized_and_invalid_json_frames() -> None:
    size = 2 * 1024 * 1024
    behaviour = MockBehaviour(oversized_size=size, oversized_on="connect", invalid_json_on="first_message")
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(behaviour) as mock:
            async with open_websocket_url(mock.url + "/v1/realtime", max_message_size=4 * size) as ws:
                assert (await recv_json(ws))["type"] == "session.created"
                oversized = await ws.get_message()
                assert isinstance(oversized, str) and len(oversized) == size
                assert json.loads(oversized)["type"] == "response.output_text.delta"
                await ws.send_message("not json either")
                broken = await ws.get_message()
                assert isinstance(broken, str)
                with pytest.raises(ValueError):
                    json.loads(broken)
                # The mock itself answers a non-JSON client frame with an error event.
                error = await recv_json(ws)
                assert error["type"] == "error"


async def test_no_pong_fault() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
            async with open_websocket_url(mock.url) as ws:
                await ws.ping(b"1")  # answered: returns once the pong arrives

            mock.behaviour = MockBehaviour(mode="echo", answer_pings=False)
            async with open_websocket_url(mock.url) as ws:
                # Shown by order, not by waiting: the mock handles a connection's frames in order, so
                # a pong for the ping would reach us before the echo of a message sent after it.
                ponged = trio.Event()

                async def ping() -> None:
                    await ws.ping(b"2")
                    ponged.set()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(ping)
                    await trio.testing.wait_all_tasks_blocked()  # the ping is on the wire
                    await ws.send_message("still alive")
                    assert await ws.get_message() == "still alive"
                    await trio.testing.wait_all_tasks_blocked()  # a pong, had one come, is handled
                    assert not ponged.is_set()
                    nursery.cancel_scope.cancel()
                assert mock.connections[1].messages == ["still alive"]  # echoed: received and answered


async def test_handshake_delay_and_stall_and_prompt_shutdown() -> None:
    with trio.fail_after(TIMEOUT):
        async with open_mock_upstream(MockBehaviour(handshake_delay=60)) as mock:
            # Not open_websocket_url(connect_timeout=...): in trio-websocket 0.12 that timeout
            # raises inside a nursery whose reader task still waits for the handshake answer, so
            # the client hangs. An enclosing cancel scope gives up cleanly.
            with trio.move_on_after(0.1) as scope:
                async with open_websocket_url(mock.url):
                    pass
            assert scope.cancelled_caught
            assert mock.handshake_count == 1
            assert mock.connections == []

        # A stalled connection must not hold up leaving the context.
        async with open_mock_upstream(MockBehaviour(stall=True)) as mock:
            async with open_websocket_url(mock.url, disconnect_timeout=0.5) as ws:
                (record,) = await mock.wait_for_connections(1)
                with trio.move_on_after(0.05) as scope:
                    await ws.get_message()  # nothing is ever sent
                assert scope.cancelled_caught
                assert record.messages == [] and record.sent_count == 0


async def test_body_exception_is_not_wrapped_in_a_group() -> None:
    with pytest.raises(KeyError):
        async with open_mock_upstream():
            raise KeyError("from the test body")
