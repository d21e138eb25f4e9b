"""What the front door does to a request head before anything routes on it, and how a
connection that failed inside the gateway is answered.

- The request target is normalised (`kt_trio.wire.request_path`); a path escaping the root and a
  repeated routing parameter (`model`, `deployment`, `api-version`) are refused with 400.
- A request for hypercorn gets its head rewritten when it must be: the normalised path, and no
  `Upgrade`/`HTTP2-Settings` headers. The gateway serves no HTTP upgrade but WebSocket (its own),
  and hypercorn's h2c upgrade held the socket and ~38 KiB per request forever (issue 13); RFC
  9110 §7.8 lets a server ignore `Upgrade`, which is what curl and others expect.
- HTTP/2 with prior knowledge (`PRI * HTTP/2.0`) and any version but 1.x: 505.
- `ConnectionGuard`: a failure inside one connection ends that connection with a documented
  answer (500 before any response, close 1011 after a 101) and one log line naming the
  connection (and its session, once there is one); the gateway's nursery never sees it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import trio

from kt_trio.wire.frames import CloseCode, Opcode, close_payload, encode_frame
from kt_trio.wire.handshake import RequestHead, error_body, head_body_split, http_response
from kt_trio.wire.request_path import PathEscapes, normal_path, repeated_routing_param, reserved_param
from kt_trio.wire.transport import Transport

log = logging.getLogger("kt_trio.gateway")

# Headers that ask hypercorn to switch protocols; dropped from requests it serves.
_UPGRADE_HEADERS = frozenset({b"upgrade", b"http2-settings"})
# A failed connection's last answer must not hold its task: a peer that does not read gets this long.
LAST_ANSWER_TIMEOUT = 1.0


class RequestRefused(Exception):
    """The head cannot be served as sent: (status, code, message) for a plain-HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def checked_head(head: RequestHead) -> RequestHead:
    """The head with its path normalised; raises `RequestRefused` for what is never served."""
    if not head.http_version.startswith("1."):
        raise RequestRefused(505, "http_version_not_supported", f"HTTP/{head.http_version} is not served here")
    try:
        path = normal_path(head.path)
    except PathEscapes:
        raise RequestRefused(400, "invalid_path", "the path climbs above the root") from None
    repeated = repeated_routing_param(head.query)
    if repeated is not None:
        raise RequestRefused(400, "duplicate_parameter", f"query parameter {repeated!r} given more than once")
    reserved = reserved_param(path, head.query)
    if reserved is not None:
        raise RequestRefused(400, "unsupported_parameter", f"query parameter {reserved!r} is not accepted on {path}")
    if path == head.path:
        return head
    return attrs.evolve(head, target=path + (f"?{head.query}" if "?" in head.target else ""))


def bytes_for_hypercorn(original: RequestHead, head: RequestHead, received: bytes) -> bytes:
    """What hypercorn reads first: `received` as it arrived, or the head rewritten (normalised
    path, no upgrade headers) followed by whatever came after it."""
    if head.target == original.target and not any(k in _UPGRADE_HEADERS for k, _ in head.raw_headers):
        return received
    lines = [f"{head.method} {head.target} HTTP/{head.http_version}".encode("latin-1")]
    lines.extend(k + b": " + v for k, v in head.raw_headers if k not in _UPGRADE_HEADERS)
    return b"\r\n".join(lines) + b"\r\n\r\n" + head_body_split(received)


@attrs.define
class ConnectionGuard:
    """One connection's state as far as a failure needs it: what was answered, its ids."""

    transport: Transport | None
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex[:16])
    session_id: str | None = None
    answered: bool = False  # a response head (or refusal) was sent
    upgraded: bool = False  # a 101 was sent: the connection speaks WebSocket now
    failed: bool = False  # `contained` caught a failure: `answer_failure` answers it

    @contextmanager
    def contained(self) -> Iterator[None]:
        """Runs the connection's work; any exception ends the connection, not the gateway."""
        try:
            yield
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer left: nothing to answer, nothing to report
        except Exception:
            log.exception(
                "connection failed",
                extra={"fields": {"connection_id": self.id, "session_id": self.session_id}},
            )
            self.failed = True

    async def answer_failure(self) -> None:
        """After `contained` caught a failure: 500, or close 1011, as far as the state allows."""
        if not self.failed or self.transport is None:
            return
        if self.upgraded:
            data = encode_frame(Opcode.CLOSE, close_payload(CloseCode.INTERNAL_ERROR, "gateway error"))
        elif not self.answered:
            body = error_body(500, "server_error", "internal_error", f"internal error (connection {self.id})")
            data = http_response(500, body)
        else:
            return
        with trio.move_on_after(LAST_ANSWER_TIMEOUT):
            try:
                await self.transport.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
