"""HTTP request bodies (issue 13): a size cap per route (413), a minimum data rate (408), JSON
element and nesting limits checked before parsing (400), large bodies parsed off the event loop.
A client can delay only its own request: a gateway process fed three 31 MiB bodies of 10 M empty
objects keeps its memory bounded and its WebSocket sessions answering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.chat import app as chat_app
from kt_trio.chat import body as body_limits
from kt_trio.chat import passthrough
from kt_trio.chat.body import BodyLimits, shape_problem
from kt_trio.mocks.http import open_mock_http_upstream
from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.conftest import running
from tests.helpers import served_port

MIB = 1024 * 1024
LIMITS = BodyLimits(max_bytes=32 * MIB, max_depth=8, max_elements=100)


# --- the shape scan (pure) ------------------------------------------------------------------------


def test_shape_scan_counts_structure_outside_strings_only() -> None:
    assert shape_problem(b'{"a": [1, 2, {"b": null}]}', LIMITS) is None
    # Brackets, commas and escaped quotes inside strings are text, not structure.
    text = json.dumps({"s": "[[[[[[[[[[,,,,]]]]" * 50, "t": 'say "{[" \\ ok'}).encode()
    assert shape_problem(text, LIMITS) is None
    assert json.loads(text)  # and it is valid JSON
    deep = b"[" * 9 + b"]" * 9
    assert "nested deeper than 8" in (shape_problem(deep, LIMITS) or "")
    assert shape_problem(b"[" * 8 + b"]" * 8, LIMITS) is None
    many = b"[" + b",".join([b"{}"] * 60) + b"]"
    assert "more than 100 elements" in (shape_problem(many, LIMITS) or "")
    # A body of nothing but strings still stops: it is not JSON within the limit.
    assert shape_problem(b'""' * 1000, LIMITS) is not None


# --- through a real gateway -----------------------------------------------------------------------


async def _post(port: int, path: str, body: bytes, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{headers}"
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        head += f"Content-Length: {len(body)}\r\n"
    await stream.send_all(head.encode() + b"\r\n" + body)
    return await _response(stream)


async def _response(stream: trio.SocketStream) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = await stream.receive_some(65536)
        assert chunk
        rest += chunk
    await stream.aclose()
    return int(lines[0].split()[1]), headers, rest


def _openai_error(body: bytes) -> dict[str, object]:
    error = json.loads(body)["error"]
    assert set(error) >= {"type", "code", "message", "param"}
    return error


CHAT_TARGET = "    - id: chat\n      provider: openai\n      model: gpt-4o-mini\n      base_url: {http}/v1\n"


async def test_size_cap_is_413_before_the_body_is_read() -> None:
    async with open_mock_http_upstream() as http_mock:
        async with running(providers_extra=CHAT_TARGET.format(http=http_mock.url)) as gw:
            # Announced over the cap: refused at once, the body never sent.
            status, headers, body = await _post(gw.port, "/v1/chat/completions", b"", "Content-Length: 40000000\r\n")
            assert status == 413 and _openai_error(body)["code"] == "request_too_large"
            assert headers.get("connection") == "close"
            status, _, body = await _post(gw.port, "/v1/files", b"", f"Content-Length: {600 * MIB}\r\n")
            assert status == 413 and _openai_error(body)["code"] == "request_too_large"
            # Chunked, growing past the cap: refused when it does.
            stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
            await stream.send_all(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            piece = b"x" * MIB
            chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            with trio.move_on_after(30):
                try:
                    for _ in range(40):
                        await stream.send_all(chunk)
                except trio.BrokenResourceError:
                    pass  # the gateway answered and closed: what the response says is checked below
            status, _, body = await _response(stream)
            assert status == 413
            # Deep JSON within the size cap: 400 before parsing.
            deep = b'{"model": "gpt-4o-mini", "messages": ' + b"[" * 100 + b"]" * 100 + b"}"
            status, _, body = await _post(gw.port, "/v1/chat/completions", deep)
            assert status == 400 and _openai_error(body)["code"] == "request_too_complex"
        assert http_mock.requests == []  # nothing reached the provider


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files"])
async def test_a_body_at_one_byte_a_second_times_out(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """408 once the body falls behind the minimum rate (grace shortened to 1 s for the test)."""
    quick = BodyLimits(max_bytes=32 * MIB, grace_secs=1.0, min_rate=1024.0)
    monkeypatch.setattr(chat_app, "JSON_LIMITS", quick)
    monkeypatch.setattr(passthrough, "PASSTHROUGH_LIMITS", quick)
    async with open_mock_http_upstream() as http_mock:
        async with running(providers_extra=CHAT_TARGET.format(http=http_mock.url)) as gw:
            stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
            await stream.send_all(f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n".encode())
            answer: list[tuple[int, dict[str, str], bytes]] = []

            async def trickle() -> None:
                # One byte a second, fewer than the 100 declared: only a timeout can end this.
                for _ in range(60):
                    try:
                        await stream.send_all(b"{")
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return
                    await trio.sleep(1)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trickle)
                answer.append(await _response(stream))
                nursery.cancel_scope.cancel()
            ((status, _, body),) = answer
            assert status == 408 and _openai_error(body)["code"] == "request_timeout"
            status, _ = await _get(gw.port)
            assert status == 200


async def _get(port: int) -> tuple[int, bytes]:
    from tests.helpers import http_get

    return await http_get(port, "/healthz")


# --- a gateway process under three 31 MiB bodies of 10 M empty objects -------------------------------


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


EMPTY_OBJECTS = 10_800_000  # 31 MiB as "{},{},..."
HOLD_BACK = 1024  # bytes of each body sent only after the WebSocket round trips


async def test_huge_json_bodies_neither_balloon_memory_nor_stall_sessions(tmp_path: Path) -> None:
    body = b'{"model": "gpt-4o-mini", "messages": [' + b",".join([b"{}"] * EMPTY_OBJECTS) + b"]}"
    assert 30 * MIB < len(body) < 32 * MIB
    with trio.fail_after(120):
        async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
            config = tmp_path / "c.yaml"
            config.write_text(
                f"gateway:\n  state_dir: {tmp_path}\nproviders:\n  targets:\n"
                "    - id: rt\n      provider: openai\n      model: gpt-realtime\n"
                f"      base_url: {mock.url}/v1/realtime\n" + CHAT_TARGET.format(http="http://127.0.0.1:1")
            )
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "kt_trio", "serve", "--config", str(config), "--port", "0"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                port = await served_port(proc)
                async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                    await ws.send_message("warm-up")
                    assert await ws.get_message() == "warm-up"
                    baseline = _peak_rss_kib(proc.pid)
                    streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(3)]
                    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n"
                    async with trio.open_nursery() as nursery:
                        for stream in streams:
                            nursery.start_soon(stream.send_all, head.encode() + body[:-HOLD_BACK])
                    # All three bodies are in the gateway's hands but one: sessions still answer.
                    for i in range(3):
                        await ws.send_message(f"during-{i}")
                        assert await ws.get_message() == f"during-{i}"
                    answers: list[tuple[int, dict[str, str], bytes]] = []
                    echoed: list[str] = []

                    async def finish(stream: trio.SocketStream) -> None:
                        await stream.send_all(body[-HOLD_BACK:])
                        answers.append(await _response(stream))

                    async def round_trips() -> None:
                        for i in range(5):
                            await ws.send_message(f"parse-{i}")
                            echoed.append(await ws.get_message())

                    async with trio.open_nursery() as nursery:
                        for stream in streams:
                            nursery.start_soon(finish, stream)
                        nursery.start_soon(round_trips)
                    assert echoed == [f"parse-{i}" for i in range(5)]
                    assert [status for status, _, _ in answers] == [400, 400, 400]
                    assert all(_openai_error(b)["code"] == "request_too_complex" for _, _, b in answers)
                    # The session is still open and in order after all of it.
                    await ws.send_message("after")
                    assert await ws.get_message() == "after"
                grown_mib = (_peak_rss_kib(proc.pid) - baseline) / 1024
                # Three bodies held at once are ~95 MiB; parsing them was 2.6 GB before the limits.
                print(f"peak RSS grew {grown_mib:.0f} MiB")
                assert grown_mib < 400, f"peak RSS grew {grown_mib:.0f} MiB"
            finally:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()


def test_limits_are_one_reusable_object() -> None:
    # The routes share the one definition (h14's new routes call the same helpers).
    assert chat_app.JSON_LIMITS is body_limits.JSON_LIMITS
    assert attrs.evolve(body_limits.JSON_LIMITS, max_bytes=1).max_depth == body_limits.JSON_LIMITS.max_depth
