"""The HTTP side of WebSocket handshakes (RFC 6455 §4), both as server and as client, with h11.

h11 parses and validates the request and response heads; this module adds what RFC 6455 asks of
an upgrade and builds the few responses the gateway writes itself (101, and plain HTTP errors on
a refused handshake: DESIGN.md "Handshake refusals are plain HTTP").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Sequence

import h11
from attrs import frozen

from kt_trio.providers.errors import error_body as provider_error_body
from kt_trio.wire.transport import Transport

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# RFC 9110 §5.6.2 token characters: what a subprotocol name is made of (RFC 6455 §4.1).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Bounds on a request or response head: 16 KiB is h11's default and more than any real client's
# WebSocket upgrade (cookies included); the time bound belongs to the caller (a cancel scope).
MAX_HEAD_BYTES = 16 * 1024

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    426: "Upgrade Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def accept_key(key: str | bytes) -> str:
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


def new_client_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


@frozen
class RequestHead:
    """A parsed HTTP request head. Header names are lower-case.

    `headers` holds the values decoded as latin-1 (lossless, for the gateway's own checks);
    `raw_headers` the bytes as they arrived, which is what is ever forwarded: a value is never
    re-encoded, so a non-ASCII byte in `User-Agent` travels as itself instead of failing an
    encode (issue 13: that took the whole process down).
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()
    http_version: str = "1.1"

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_tokens(self, name: str) -> list[str]:
        """Comma-separated tokens across every occurrence of a header, stripped."""
        out: list[str] = []
        for k, v in self.headers:
            if k == name:
                out.extend(t.strip() for t in v.split(",") if t.strip())
        return out

    @property
    def is_websocket_upgrade(self) -> bool:
        return (
            self.method == "GET"
            and "websocket" in (t.lower() for t in self.header_tokens("upgrade"))
            and "upgrade" in (t.lower() for t in self.header_tokens("connection"))
        )


def upgrade_problem(head: RequestHead) -> str | None:
    """What makes a WebSocket upgrade invalid under RFC 6455 §4.2.1 (answer 400), else None.

    The version (426) is checked separately because its answer names the version we speak.
    """
    if head.http_version in ("1.0", "0.9"):
        return "a WebSocket upgrade needs HTTP/1.1 or later"
    keys = [v for k, v in head.headers if k == "sec-websocket-key"]
    if len(keys) != 1:
        return "exactly one Sec-WebSocket-Key is required" if keys else "missing Sec-WebSocket-Key"
    try:
        nonce = base64.b64decode(keys[0].strip(), validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        return "Sec-WebSocket-Key must be the base64 of 16 bytes"
    if not all(_TOKEN.fullmatch(t) for t in head.header_tokens("sec-websocket-protocol")):
        return "Sec-WebSocket-Protocol must list tokens"
    return None


class HeadError(Exception):
    """A request head that cannot be parsed; answer 400 (or just close when nothing arrived)."""


async def read_request_head(transport: Transport) -> tuple[RequestHead | None, bytes]:
    """Reads until a complete request head. Returns (head, every byte read so far).

    The bytes read are returned whole, not just what follows the head, because a plain HTTP
    request is handed to hypercorn, which must parse it again from the start. `head` is None when
    the peer closed before sending a complete head.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    received = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise HeadError(str(exc)) from exc
        if isinstance(event, h11.Request):
            raw = tuple((bytes(k), bytes(v)) for k, v in event.headers)
            head = RequestHead(
                method=event.method.decode("ascii", "replace"),
                target=event.target.decode("ascii", "replace"),
                headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in raw),
                raw_headers=raw,
                http_version=event.http_version.decode("ascii", "replace"),
            )
            return head, bytes(received)
        if event is h11.NEED_DATA:
            data = await transport.receive_some(MAX_HEAD_BYTES)
            received += data
            conn.receive_data(data)  # b"" tells h11 the peer closed
            if not data and not received:
                return None, b""
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None, bytes(received)
        raise HeadError(f"unexpected {type(event).__name__}")


def head_body_split(received: bytes) -> bytes:
    """The bytes after the request head (frames a client sent before our 101 arrived)."""
    idx = received.find(b"\r\n\r\n")
    return received[idx + 4 :] if idx >= 0 else b""


def switching_protocols(key: str, subprotocol: str | None) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_body(status: int, err_type: str, code: str, message: str) -> bytes:
    """The OpenAI-shaped error body every refusal carries (the one builder, `kt_trio.providers.errors`)."""
    return provider_error_body(err_type, code, message)


def http_response(
    status: int, body: bytes, *, extra_headers: Iterable[tuple[str, str]] = (), content_type: str = "application/json"
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    lines.extend(f"{k}: {v}" for k, v in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- client side -------------------------------------------------------------------------------


@frozen
class UpgradeResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    trailing: bytes  # bytes after a 101's head: the server's first frames

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


def _ascii(value: str | bytes) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else value


def upgrade_request(
    host: str, target: str, key: str, headers: Sequence[tuple[str | bytes, str | bytes]]
) -> tuple[bytes, h11.Connection]:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    # As bytes, the one form h11 takes mixed (its own conversion of a str is ASCII as well).
    all_headers = [
        (b"Host", host.encode("ascii")),
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", key.encode("ascii")),
        (b"Sec-WebSocket-Version", b"13"),
        *((_ascii(k), _ascii(v)) for k, v in headers),
    ]
    data = conn.send(h11.Request(method="GET", target=target, headers=all_headers))
    return data or b"", conn


# A refused upgrade's body is read up to this much, enough for a provider's JSON error message.
_MAX_ERROR_BODY = 8192


async def read_upgrade_response(transport: Transport, conn: h11.Connection) -> UpgradeResponse:
    """Reads the server's answer to an upgrade request; raises HeadError on garbage."""
    response: h11.Response | h11.InformationalResponse | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise HeadError(str(exc)) from exc
        if event is h11.NEED_DATA:
            data = await transport.receive_some()
            conn.receive_data(data)
            if not data and response is None:
                raise HeadError("connection closed before a response")
            continue
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            return UpgradeResponse(101, _str_headers(event.headers), b"", bytes(conn.trailing_data[0]))
        if isinstance(event, h11.Response):
            response = event
            continue
        if isinstance(event, h11.Data):
            if len(body) < _MAX_ERROR_BODY:
                body += event.data
            continue
        if response is not None and (isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) or event is h11.PAUSED):
            return UpgradeResponse(
                response.status_code, _str_headers(response.headers), bytes(body[:_MAX_ERROR_BODY]), b""
            )
        if isinstance(event, h11.ConnectionClosed):
            raise HeadError("connection closed before a response")


def _str_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in headers)
