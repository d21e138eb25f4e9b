"""A mock guardrail service for the tests (DESIGN.md "Guardrail hook"), served on 127.0.0.1.

Its answer per request is chosen by `decide(payload)`: a dict (sent as JSON), raw bytes (sent as
is: malformed answers), an int (that status, empty body), or `SLOW` (never answers within any
test's timeout). Every request is recorded with its headers and JSON payload.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from conformance.mock_http_upstream import serve_asgi

SLOW = object()
Answer = dict[str, Any] | bytes | int | object


@attrs.define
class Seen:
    payload: dict[str, Any]
    headers: dict[str, str]


@attrs.define
class MockGuardrail:
    decide: Callable[[dict[str, Any]], Answer]
    seen: list[Seen] = attrs.field(factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""
    release: trio.Event = attrs.field(factory=trio.Event)  # ends every SLOW answer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            # hypercorn then serves without lifespan events (this service needs none)
            raise RuntimeError(f"{scope['type']} is not served")
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        payload = json.loads(body)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append(Seen(payload, headers))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            answer = self.decide(payload)
            if answer is SLOW:
                await self.release.wait()
                answer = {"action": "allow"}
            if isinstance(answer, int):
                status, data = answer, b""
            elif isinstance(answer, bytes):
                status, data = 200, answer
            else:
                status, data = 200, json.dumps(answer).encode()
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": data})
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def mock_guardrail(decide: Callable[[dict[str, Any]], Answer]) -> AsyncIterator[MockGuardrail]:
    mock = MockGuardrail(decide)
    async with serve_asgi(mock) as url:
        mock.url = url + "/judge"
        try:
            yield mock
        finally:
            mock.release.set()


def by_text(rules: dict[str, Answer], default: Answer | None = None) -> Callable[[dict[str, Any]], Answer]:
    """Answer with the first rule whose key is in the text; else `default` (allow)."""

    def decide(payload: dict[str, Any]) -> Answer:
        for needle, answer in rules.items():
            if needle in payload["text"]:
                return answer
        return default if default is not None else {"action": "allow"}

    return decide
