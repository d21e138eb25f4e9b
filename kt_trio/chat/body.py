"""Limits on HTTP request bodies, for every route that reads one (issue 13): a client can delay
only its own request.

- Size: a cap per route (`BodyLimits.max_bytes`); a declared `Content-Length` over it is refused
  before a byte is read, a body that grows past it as soon as it does: 413.
- Time: a minimum data rate, as servers like Kestrel have it. The body must arrive within
  `grace_secs` plus one second per `min_rate` bytes received so far: a 1 byte/s client is cut off
  after about `grace_secs` (408), while a large upload at any real speed is never cut off.
- Shape: before `json.loads` builds a single object, a scan that runs in C (escape removal, one
  regex) and stops early counts the JSON elements (containers and separators) and the nesting
  depth, outside strings; too many or too deep is 400 `request_too_complex`. So a 31 MiB body of
  10 M empty objects costs a scan up to the limit, not a gigabyte of dicts.
- Off the event loop: a body over `PARSE_INLINE_BYTES` is scanned and parsed on a worker thread
  (at most `PARSE_THREADS` at once), so other connections' tasks keep running meanwhile.

Routes call `read_body` + `parse_json` (a JSON body read whole, as chat completions do) or
`iter_body` (a body streamed upstream unread, as passthrough does). Refusals are
`HttpRefusal`s with the OpenAI-shaped body every door answers with.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import trio
from attrs import frozen

from kt_trio.chat.asgi_io import ClientGone
from kt_trio.providers.errors import HttpRefusal, refusal

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Scope = MutableMapping[str, Any]

MIB = 1024 * 1024
# Bodies at most this big are scanned and parsed inline: well under a millisecond of work.
PARSE_INLINE_BYTES = 64 * 1024
# Scans and parses of large bodies at once: each holds transient copies of its body, so this
# bounds that memory; a request beyond it waits its turn (and only it waits).
PARSE_THREADS = 2


@frozen
class BodyLimits:
    max_bytes: int
    # A chat request's tool schemas nest perhaps 10 deep; 64 is far beyond any real request and
    # far below what would exhaust the parser's stack.
    max_depth: int = 64
    # Containers plus separators, about the number of values. A long conversation with many tools
    # is some thousands; OpenAI's embeddings limit (300k tokens a request, as token arrays) fits.
    max_elements: int = 400_000
    grace_secs: float = 10.0
    min_rate: float = 1024.0  # bytes per second, after the grace period


# What a chat request may be: images inlined as base64 can be several MiB.
JSON_LIMITS = BodyLimits(max_bytes=32 * MIB)
# Passthrough bodies (files, uploads) stream upstream unread: the cap stops an endless body, and
# matches OpenAI's own file size limit.
PASSTHROUGH_LIMITS = BodyLimits(max_bytes=512 * MIB)


def body_refusal(status: int, code: str, message: str) -> HttpRefusal:
    """An OpenAI-shaped refusal; after a 408 or 413 the rest of the body is never read, so the
    connection cannot carry another request."""
    if status in (408, 413):
        return refusal(status, "invalid_request_error", code, message, connection="close")
    return refusal(status, "invalid_request_error", code, message)


def too_large(limits: BodyLimits) -> HttpRefusal:
    return body_refusal(413, "request_too_large", f"The request body is larger than {limits.max_bytes} bytes.")


def check_declared_length(scope: Scope, limits: BodyLimits) -> None:
    """413 at once when the client announces a body over the cap."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length" and value.strip().isdigit() and int(value) > limits.max_bytes:
            raise too_large(limits)


async def _receive_chunk(receive: Receive, deadline: float) -> MutableMapping[str, Any]:
    with trio.move_on_at(deadline):
        return await receive()
    raise body_refusal(408, "request_timeout", "The request body was not received in time.")


async def iter_body(receive: Receive, limits: BodyLimits) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, within the size cap and the minimum data rate; raises
    `HttpRefusal` (413, 408) or `ClientGone`."""
    start = trio.current_time()
    size = 0
    while True:
        message = await _receive_chunk(receive, start + limits.grace_secs + size / limits.min_rate)
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(limits)
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


async def read_body(receive: Receive, limits: BodyLimits, scope: Scope | None = None) -> bytearray:
    """The whole body, within `limits`: one buffer grown as chunks arrive, handed on as it is
    (json.loads and the scan take a bytearray; a copy would double a large body's memory)."""
    if scope is not None:
        check_declared_length(scope, limits)
    buffer = bytearray()
    async for chunk in iter_body(receive, limits):
        buffer += chunk
    return buffer


# Outside strings, the characters that make JSON structure. Strings are matched whole (after
# escapes are removed, a string is a quote, no quote, a quote: linear, no backtracking).
_TOKEN = re.compile(rb'"[^"]*"|[{}\[\],]')
_QUOTE, _OPEN_OBJECT, _OPEN_ARRAY, _COMMA = ord('"'), ord("{"), ord("["), ord(",")


def shape_problem(body: bytes | bytearray, limits: BodyLimits) -> str | None:
    """Why `body` is too deep or has too many elements to parse, or None. Stops as soon as it
    knows; never builds anything but a copy of the body without its escape sequences."""
    if b"\\" in body:
        # `\\` first, then `\"`: what is left has no quote inside a string.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    depth = elements = tokens = 0
    # Valid JSON has at most about two strings per element (a key and a value): past this many
    # tokens the body is over the element limit or is not JSON, and the scan stops either way.
    max_tokens = 4 * limits.max_elements + 16
    for match in _TOKEN.finditer(body):
        tokens += 1
        if tokens > max_tokens:
            return f"The JSON body has more than {limits.max_elements} elements."
        first = match.group()[0]
        if first == _QUOTE:
            continue
        if first in (_OPEN_OBJECT, _OPEN_ARRAY):
            depth += 1
            elements += 1
            if depth > limits.max_depth:
                return f"The JSON body is nested deeper than {limits.max_depth} levels."
        elif first == _COMMA:
            elements += 1
        else:
            depth -= 1
        if elements > limits.max_elements:
            return f"The JSON body has more than {limits.max_elements} elements."
    return None


def _scan_and_parse(body: bytes | bytearray, limits: BodyLimits) -> Any:
    problem = shape_problem(body, limits)
    if problem is not None:
        raise body_refusal(400, "request_too_complex", problem)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise body_refusal(400, "invalid_json", f"The body is not valid JSON: {exc}") from None


_parse_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("body_parse_limiter")


async def parse_json(body: bytes | bytearray, limits: BodyLimits) -> Any:
    """`json.loads(body)` after the shape check; 400 `invalid_json` or `request_too_complex`.
    Large bodies are handled on a worker thread."""
    if len(body) <= PARSE_INLINE_BYTES:
        return _scan_and_parse(body, limits)
    try:
        limiter = _parse_limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(PARSE_THREADS)
        _parse_limiter.set(limiter)
    return await trio.to_thread.run_sync(_scan_and_parse, body, limits, limiter=limiter)
