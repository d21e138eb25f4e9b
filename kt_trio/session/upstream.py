"""Dialling the provider: TCP, TLS, the upgrade request, and the outcome as a leg or a DialError.

The dial happens before the client's handshake is answered, so every failure here becomes a plain
HTTP status on the client's own handshake (502 refused or failed, 504 timeout) instead of an
accepted WebSocket that hangs or closes at once.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

import trio
from attrs import frozen

from kt_trio.session.leg import Leg
from kt_trio.wire.handshake import (
    HeadError,
    accept_key,
    new_client_key,
    read_upgrade_response,
    upgrade_request,
)
from kt_trio.wire.transport import SocketTransport, StreamTransport, Transport


class DialError(Exception):
    """The upstream could not be reached or refused the upgrade. Never carries a secret.

    `message` goes to the client and never names an internal host, port or URL (issue 13: a 502
    body is no map of the operator's network); `detail` says which, for the gateway's log.
    """

    def __init__(
        self, status: int, code: str, message: str, upstream_status: int | None = None, *, detail: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.upstream_status = upstream_status
        self.detail = detail or message


@frozen
class Upstream:
    leg: Leg
    subprotocol: str | None
    url: str


_default_ssl_context: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    global _default_ssl_context
    if _default_ssl_context is None:
        _default_ssl_context = ssl.create_default_context()
    return _default_ssl_context


async def dial(
    url: str,
    headers: Sequence[tuple[bytes, bytes]],
    subprotocols: Sequence[str],
    *,
    connect_timeout: float,
    max_message_size: int,
    ssl_context: ssl.SSLContext | None = None,
) -> Upstream:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise DialError(
            502,
            "upstream_misconfigured",
            "the upstream URL is misconfigured",
            detail=f"upstream URL scheme must be ws or wss: {parts.scheme}",
        )
    secure = parts.scheme == "wss"
    host = parts.hostname
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = host if parts.port is None else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{port}"

    transport: Transport | None = None
    try:
        with trio.fail_after(connect_timeout):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                raise DialError(
                    502,
                    "upstream_unreachable",
                    "cannot connect to the upstream",
                    detail=f"cannot connect to upstream {host}:{port}: {exc.strerror or exc}",
                ) from None
            if secure:
                tls = trio.SSLStream(
                    stream, ssl_context or default_ssl_context(), server_hostname=host, https_compatible=True
                )
                transport = StreamTransport(tls)
                try:
                    # The TLS handshake runs here, explicitly, so that a bad certificate is
                    # reported as that and not as a timeout later in the upgrade.
                    await tls.do_handshake()
                except trio.BrokenResourceError as exc:
                    cause = exc.__cause__
                    if isinstance(cause, ssl.SSLCertVerificationError):
                        raise DialError(
                            502,
                            "upstream_tls_error",
                            "upstream TLS certificate verification failed",
                            detail=f"upstream {host}:{port} TLS certificate not trusted: {cause.verify_message}",
                        ) from None
                    raise DialError(
                        502,
                        "upstream_tls_error",
                        "upstream TLS handshake failed",
                        detail=f"upstream {host}:{port} TLS handshake failed: {cause or exc}",
                    ) from None
            else:
                raw = socket.socket(fileno=stream.socket.detach())
                transport = SocketTransport(raw)
            key = new_client_key()
            request, conn = upgrade_request(host_header, target, key, [*headers, *_subprotocol_header(subprotocols)])
            try:
                await transport.send_all(request)
                response = await read_upgrade_response(transport, conn)
            except (trio.BrokenResourceError, trio.ClosedResourceError, HeadError) as exc:
                raise DialError(
                    502,
                    "upstream_handshake_failed",
                    "upstream handshake failed",
                    detail=f"upstream {host}:{port} handshake failed: {exc}",
                ) from None
    except trio.TooSlowError:
        if transport is not None:
            transport.close()
        raise DialError(
            504, "upstream_timeout", f"upstream did not complete the handshake within {connect_timeout:g}s"
        ) from None
    except BaseException:
        if transport is not None:
            transport.close()
        raise

    if response.status != 101:
        transport.close()
        raise DialError(
            502,
            "upstream_refused",
            f"upstream refused the WebSocket handshake with HTTP {response.status}",
            upstream_status=response.status,
        )
    if response.header("sec-websocket-accept") != accept_key(key):
        transport.close()
        raise DialError(502, "upstream_handshake_failed", "upstream sent a wrong Sec-WebSocket-Accept")
    chosen = response.header("sec-websocket-protocol")
    leg = Leg("upstream", transport, max_message_size=max_message_size, initial=response.trailing)
    return Upstream(leg=leg, subprotocol=chosen, url=url)


def _subprotocol_header(subprotocols: Sequence[str]) -> list[tuple[bytes, bytes]]:
    # latin-1: the tokens were decoded so from the client's bytes, and go back as those bytes.
    return [(b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1"))] if subprotocols else []
