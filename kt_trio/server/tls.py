"""TLS on the gateway's listener: one port serves `wss://` and `https://` (DESIGN.md).

The TLS handshake runs inside the connection's own task, bounded in time, before the request
head is read: a client that fails it (plain HTTP to the TLS port, a client that does not trust
our certificate, no client certificate when `client_ca` asks for one) ends its own connection,
logged at debug level, and nothing else.
"""

from __future__ import annotations

import logging
import socket
import ssl

import trio

from kt_trio.config.schema import GatewayTls

log = logging.getLogger("kt_trio.gateway")

# A client gets this long for its TLS handshake, like HEAD_TIMEOUT for its request head.
TLS_HANDSHAKE_TIMEOUT = 10.0


class TlsSetupError(Exception):
    """The certificate, key or client CA cannot be loaded; the message names the file."""


def server_context(tls: GatewayTls) -> ssl.SSLContext | None:
    """The listener's context, None without TLS. Raises `TlsSetupError` with the file's name."""
    if not tls.certfile and not tls.keyfile:
        if tls.client_ca:
            raise TlsSetupError("gateway.tls.client_ca needs gateway.tls.certfile and keyfile")
        return None
    if not tls.certfile or not tls.keyfile:
        raise TlsSetupError("gateway.tls needs both certfile and keyfile")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # One protocol on this port over TLS: HTTP/1.1 (WebSocket upgrades are HTTP/1.1 requests).
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        ctx.load_cert_chain(tls.certfile, tls.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"cannot load gateway.tls certfile {tls.certfile!r} / keyfile {tls.keyfile!r}: {exc}"
        ) from None
    if tls.client_ca:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"cannot load gateway.tls.client_ca {tls.client_ca!r}: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def accept_tls(
    sock: socket.socket, ctx: ssl.SSLContext, connection_id: str
) -> trio.SSLStream[trio.SocketStream] | None:
    """The connection's TLS stream once the handshake is done; None when it failed or timed out."""
    stream = trio.SSLStream(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), ctx, server_side=True)
    with trio.move_on_after(TLS_HANDSHAKE_TIMEOUT):
        try:
            await stream.do_handshake()
            return stream
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug(
                "TLS handshake failed",
                extra={"fields": {"connection_id": connection_id, "error": str(exc.__cause__ or exc)}},
            )
            return None
    log.debug("TLS handshake timed out", extra={"fields": {"connection_id": connection_id}})
    return None
