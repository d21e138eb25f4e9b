"""The listening socket and each connection accepted on it, up to the hand-off by route.

`open_listener` binds the port; `Connections.accept_loop` accepts until cancelled. Each
connection gets its own task: a TLS handshake first under `gateway.tls`, then its request head
(bounded in size by h11 and in time by `HEAD_TIMEOUT`), checked by the front door
(`kt_trio.server.front_door`), and handed on: `/ws/events` to the event stream, another WebSocket
upgrade to the WebSocket door (`kt_trio.server.websocket_door`; our own lean WebSocket stack:
hypercorn's ASGI WebSocket loses close codes, cannot be cancelled out of a stuck send and ignores
oversized messages, see DESIGN.md), everything else to hypercorn serving the ASGI app, replaying
the bytes already read. A failure inside one connection ends that connection, never the gateway.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from kt_trio.events.stream import serve_event_stream
from kt_trio.server.front_door import ConnectionGuard, RequestRefused, bytes_for_hypercorn, checked_head
from kt_trio.server.refusal import refuse
from kt_trio.server.replay_stream import ReplayStream
from kt_trio.server.tls import accept_tls, server_context
from kt_trio.server.websocket_door import open_websocket
from kt_trio.wire.handshake import HeadError, RequestHead, read_request_head
from kt_trio.wire.transport import SocketTransport, StreamTransport, Transport

if TYPE_CHECKING:
    from kt_trio.server.gateway import Gateway

log = logging.getLogger("kt_trio.gateway")

# A client gets this long to send its request head; slower is a slowloris, not a client.
HEAD_TIMEOUT = 10.0
EVENTS_ROUTE = "/ws/events"
# The listen backlog: room for a burst of session openings while the accept loop catches up.
BACKLOG = 1024


def open_listener(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound, listening, non-blocking socket; the caller closes it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    try:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # a `serve --workers` worker: the kernel spreads connections over the workers
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        lsock.bind((host, port))
        lsock.listen(BACKLOG)
        lsock.setblocking(False)
    except BaseException:
        lsock.close()
        raise
    return lsock


class Connections:
    """Serves every connection one gateway accepts."""

    def __init__(self, gateway: Gateway, http_app: ASGIWrapper) -> None:
        """`http_app`: the ASGI app hypercorn serves for whatever is not a WebSocket session."""
        self.gateway = gateway
        self._http_app = http_app
        # `gateway.tls`: the listener's TLS context (raises TlsSetupError naming a bad file).
        self._tls = server_context(gateway.config.gateway.tls)
        self._hconfig = HypercornConfig()
        self._hcontext = WorkerContext(None)

    async def accept_loop(self, lsock: socket.socket, nursery: trio.Nursery) -> None:
        """Accepts until cancelled; each connection runs in `nursery`."""
        while True:
            try:
                conn, addr = lsock.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(lsock)
                continue
            except OSError as exc:
                # EMFILE and friends: log, back off briefly, keep serving the sessions we have.
                log.warning("accept failed", extra={"fields": {"error": str(exc)}})
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self._handle_connection, conn, addr[0])

    async def stop_http(self) -> None:
        """Tells hypercorn's connections that the server is terminating (shutdown)."""
        await self._hcontext.terminated.set()

    async def _handle_connection(self, sock: socket.socket, peer_ip: str) -> None:
        if self._tls is not None:
            await self._handle_tls_connection(sock, peer_ip, self._tls)
            return
        transport = SocketTransport(sock)
        guard = ConnectionGuard(transport)
        try:
            with guard.contained():
                await self._serve_connection(
                    transport, lambda: trio.SocketStream(trio.socket.from_stdlib_socket(sock)), peer_ip, guard
                )
            await guard.answer_failure()
        finally:
            if guard.answered:
                sock.close()  # handed off: its new owner closed it, or failed before it could
            else:
                transport.close()

    async def _handle_tls_connection(self, sock: socket.socket, peer_ip: str, ctx: ssl.SSLContext) -> None:
        """`gateway.tls`: the same front door behind a TLS handshake of the connection's own."""
        guard = ConnectionGuard(None)
        try:
            with guard.contained():
                stream = await accept_tls(sock, ctx, guard.id)
                if stream is None:
                    return
                transport = guard.transport = StreamTransport(stream)
                await self._serve_connection(transport, lambda: stream, peer_ip, guard)
            await guard.answer_failure()
        finally:
            sock.close()

    async def _serve_connection(
        self,
        transport: Transport,
        open_stream: Callable[[], trio.abc.Stream],
        peer_ip: str,
        guard: ConnectionGuard,
    ) -> None:
        """Reads the request head and hands the connection to what serves it. `open_stream`
        gives the connection as a trio Stream, for those who take it over (events, HTTP)."""
        gateway = self.gateway
        head: RequestHead | None = None
        received = b""
        with trio.move_on_after(HEAD_TIMEOUT):
            try:
                head, received = await read_request_head(transport)
            except HeadError as exc:
                message = f"bad request head: {exc}"
                await refuse(transport, gateway.metrics, 400, "invalid_request_error", "bad_request", message)
                return
        if head is None:
            return
        try:
            checked = checked_head(head)
        except RequestRefused as exc:
            await refuse(transport, gateway.metrics, exc.status, "invalid_request_error", exc.code, exc.message)
            return
        if checked.is_websocket_upgrade and checked.path == EVENTS_ROUTE:
            guard.answered = True  # the event stream answers for itself from here
            stream = ReplayStream(open_stream(), received)
            await serve_event_stream(
                gateway.hub,
                gateway.config.features.websocket,
                stream,
                checked,
                on_refused=gateway.metrics.handshake_rejected,
                check_key=gateway.check_key,
                subscribers=gateway.subscribers,
                console=gateway.admin.auth.console_login,
            )
            return
        if checked.is_websocket_upgrade:
            await open_websocket(gateway, transport, checked, received, peer_ip, guard)
            return
        guard.answered = True  # hypercorn answers (500s included) from here
        await self.serve_http(open_stream(), bytes_for_hypercorn(head, checked, received))

    async def serve_http(self, connection: trio.abc.Stream, received: bytes) -> None:
        """hypercorn serves the HTTP app on `connection`, after replaying `received` (also the
        admin API's worker socket, `kt_trio.admin.siblings`)."""
        stream = ReplayStream(connection, received)
        await TCPServer(self._http_app, self._hconfig, self._hcontext, ConnectionState({}), stream)  # type: ignore[arg-type]
