"""The gateway: one listening port, a front door, the sessions, and shutdown.

The front door accepts each TCP connection, reads its request head (bounded in size by h11 and in
time by `HEAD_TIMEOUT`), and hands it on: a WebSocket upgrade on a proxied route becomes a
`Session` (our own lean WebSocket stack: hypercorn's ASGI WebSocket loses close codes, cannot
be cancelled out of a stuck send and ignores oversized messages, see DESIGN.md), everything else
goes to hypercorn serving the ASGI app, replaying the bytes already read.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections import deque
from collections.abc import Callable
from urllib.parse import parse_qs

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from kt_trio.config.schema import GatewayConfig
from kt_trio.records import SessionSummary
from kt_trio.server.http_app import HttpApp
from kt_trio.server.replay_stream import ReplayStream
from kt_trio.session.leg import Leg
from kt_trio.session.session import Session
from kt_trio.session.upstream import DialError, dial
from kt_trio.session.upstream_headers import answer_subprotocol, upstream_headers, upstream_subprotocols
from kt_trio.wire.handshake import (
    HeadError,
    RequestHead,
    error_body,
    head_body_split,
    http_response,
    read_request_head,
    switching_protocols,
)
from kt_trio.wire.transport import SocketTransport

log = logging.getLogger("kt_trio.gateway")

# A client gets this long to send its request head; slower is a slowloris, not a client.
HEAD_TIMEOUT = 10.0
WEBSOCKET_ROUTES = ("/v1/realtime", "/v1/responses")
# The listen backlog: room for a burst of session openings while the accept loop catches up.
BACKLOG = 1024


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        secrets: dict[str, str] | None = None,
        upstream_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.secrets = secrets or {}
        # None: the system's trust store (ssl.create_default_context()); tests and private CAs pass one.
        self.upstream_ssl_context = upstream_ssl_context
        self.sessions: set[Session] = set()
        self.port: int | None = None
        # The last summaries, for `kt_trio.testing` and diagnostics; bounded so a long-running
        # gateway does not grow (the audit log is the durable record).
        self.recent_summaries: deque[SessionSummary] = deque(maxlen=256)
        self._sessions_changed = trio.Event()
        self._shutting_down = False
        self._accept_scope = trio.CancelScope()
        self._http_app = ASGIWrapper(HttpApp(is_ready=lambda: not self._shutting_down))
        self._hconfig = HypercornConfig()
        self._hcontext = WorkerContext(None)

    # -- serving --------------------------------------------------------------------------------

    async def serve(
        self, host: str = "127.0.0.1", port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serves until `shutdown()`; then drains within `gateway.shutdown_timeout_secs`."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lsock.bind((host, port))
            lsock.listen(BACKLOG)
            lsock.setblocking(False)
            self.port = lsock.getsockname()[1]
            async with trio.open_nursery() as connections:
                with self._accept_scope:
                    task_status.started(self.port)
                    await self._accept_loop(lsock, connections)
                # Shutdown: no new connections; every session closes with 1001 on both legs.
                lsock.close()
                await self._hcontext.terminated.set()
                for session in list(self.sessions):
                    session.shutdown()
                connections.cancel_scope.deadline = trio.current_time() + self.config.gateway.shutdown_timeout_secs
        finally:
            lsock.close()

    def shutdown(self) -> None:
        self._shutting_down = True
        self._accept_scope.cancel()

    async def _accept_loop(self, lsock: socket.socket, nursery: trio.Nursery) -> None:
        while True:
            try:
                conn, addr = lsock.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(lsock)
                continue
            except OSError as exc:
                # EMFILE and friends: log, back off briefly, keep serving the sessions we have.
                log.warning("accept failed: %s", exc)
                await trio.sleep(0.1)
                continue
            nursery.start_soon(self._handle_connection, conn, addr[0])

    async def _handle_connection(self, sock: socket.socket, peer_ip: str) -> None:
        transport = SocketTransport(sock)
        handed_off = False
        try:
            head: RequestHead | None = None
            received = b""
            with trio.move_on_after(HEAD_TIMEOUT):
                try:
                    head, received = await read_request_head(transport)
                except HeadError as exc:
                    await _refuse(transport, 400, "invalid_request_error", "bad_request", f"bad request head: {exc}")
                    return
            if head is None:
                return
            if head.is_websocket_upgrade:
                await self._open_websocket(transport, head, received, peer_ip)
                return
            handed_off = True
            await self._serve_http(sock, received)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if not handed_off:
                transport.close()

    async def _serve_http(self, sock: socket.socket, received: bytes) -> None:
        stream = ReplayStream(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), received)
        await TCPServer(self._http_app, self._hconfig, self._hcontext, ConnectionState({}), stream)  # type: ignore[arg-type]

    # -- WebSocket sessions ---------------------------------------------------------------------

    async def _open_websocket(
        self, transport: SocketTransport, head: RequestHead, received: bytes, peer_ip: str
    ) -> None:
        route = head.path
        if route not in WEBSOCKET_ROUTES or not self.config.gateway.websocket.enabled:
            await _refuse(transport, 404, "invalid_request_error", "not_found", f"no WebSocket route at {route}")
            return
        key = head.header("sec-websocket-key")
        if not key:
            await _refuse(transport, 400, "invalid_request_error", "bad_request", "missing Sec-WebSocket-Key")
            return
        if head.header("sec-websocket-version") != "13":
            await _refuse(
                transport,
                426,
                "invalid_request_error",
                "bad_request",
                "unsupported WebSocket version",
                extra_headers=[("Sec-WebSocket-Version", "13")],
            )
            return
        query = parse_qs(head.query)
        model = query.get("model", [None])[0]
        target = self.config.find_websocket_target(model)
        if target is None:
            what = f"model {model!r}" if model else "a WebSocket target"
            await _refuse(transport, 404, "invalid_request_error", "model_not_found", f"no target serves {what}")
            return
        settings = self.config.session_settings(target)
        base = target.websocket_url(route)  # type: ignore[arg-type]
        url = base + (("&" if "?" in base else "?") + head.query if head.query else "")
        offered = head.header_tokens("sec-websocket-protocol")
        try:
            upstream = await dial(
                url,
                upstream_headers(head.headers, provider=target.provider, secret=self.secrets.get(target.id)),
                upstream_subprotocols(offered),
                connect_timeout=settings.connect_timeout_secs,
                max_message_size=settings.max_upstream_message_size_bytes,
                ssl_context=self.upstream_ssl_context,
            )
        except DialError as exc:
            log.info("handshake refused: target=%s status=%s code=%s", target.id, exc.status, exc.code)
            await _refuse(transport, exc.status, "upstream_error", exc.code, exc.message)
            return
        try:
            await transport.send_all(switching_protocols(key, answer_subprotocol(offered, upstream.subprotocol)))
        except BaseException:
            upstream.leg.close_transport()
            raise
        client = Leg(
            "client", transport, max_message_size=settings.max_message_size_bytes, initial=head_body_split(received)
        )
        session = Session(
            client,
            upstream.leg,
            settings,
            route=route,
            target=target.id,
            model=model or target.model,
            client_ip=peer_ip,
            on_summary=self._on_summary,
        )
        self._add_session(session)
        if self._shutting_down:
            session.shutdown()
        log.info("session start id=%s route=%s target=%s ip=%s", session.id, route, target.id, peer_ip)
        try:
            await session.run()
        finally:
            self._discard_session(session)

    def _add_session(self, session: Session) -> None:
        self.sessions.add(session)
        self._notify()

    def _discard_session(self, session: Session) -> None:
        self.sessions.discard(session)
        self._notify()

    def _notify(self) -> None:
        self._sessions_changed.set()
        self._sessions_changed = trio.Event()

    async def wait_sessions(self, predicate: Callable[[int], bool]) -> None:
        """Waits until `predicate(number of open sessions)` holds; no polling."""
        while not predicate(len(self.sessions)):
            await self._sessions_changed.wait()

    def _on_summary(self, summary: SessionSummary) -> None:
        self.recent_summaries.append(summary)
        log.info(
            "session end id=%s code=%s by=%s in=%d out=%d secs=%.3f",
            summary.session_id,
            summary.close_code,
            summary.closed_by,
            summary.messages_in,
            summary.messages_out,
            summary.duration_secs,
        )


async def _refuse(
    transport: SocketTransport,
    status: int,
    err_type: str,
    code: str,
    message: str,
    *,
    extra_headers: list[tuple[str, str]] | None = None,
) -> None:
    body = error_body(status, err_type, code, message)
    try:
        await transport.send_all(http_response(status, body, extra_headers=extra_headers or ()))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
