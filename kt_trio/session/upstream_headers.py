"""What of the client's handshake goes upstream, and what the gateway adds (pure rules).

DESIGN.md: client credentials are never forwarded; the target's own secret is injected instead;
`OpenAI-Beta` passes only if the client sent it (OpenAI rejects `realtime=v1` on GA models, so
the gateway never adds it); hop-by-hop headers stay on their own hop.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

# RFC 9110 §7.6.1 hop-by-hop headers, plus the handshake headers the dialler writes itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",  # no extension is negotiated on either leg
        "sec-websocket-protocol",  # rebuilt from the offered list, minus credentials
        "sec-websocket-accept",
        # Credentials of the client towards the gateway, and its browser context.
        "authorization",
        "api-key",
        "x-api-key",
        "cookie",
        "origin",
    }
)
INSECURE_KEY_PREFIX = "openai-insecure-api-key."


@frozen
class ClientCredential:
    """Where the client put its key. The value is a secret: never logged, never forwarded."""

    value: str
    source: str  # "authorization" | "api-key" | "subprotocol"


def client_credential(headers: Sequence[tuple[str, str]], subprotocols: Sequence[str]) -> ClientCredential | None:
    for name, value in headers:
        if name == "authorization" and value[:7].lower() == "bearer ":
            return ClientCredential(value[7:].strip(), "authorization")
    for name, value in headers:
        if name == "api-key" and value.strip():
            return ClientCredential(value.strip(), "api-key")
    for proto in subprotocols:
        if proto.startswith(INSECURE_KEY_PREFIX):
            return ClientCredential(proto[len(INSECURE_KEY_PREFIX) :], "subprotocol")
    return None


def upstream_subprotocols(offered: Sequence[str]) -> list[str]:
    """The client's offered subprotocols minus the one that carries its key."""
    return [p for p in offered if not p.startswith(INSECURE_KEY_PREFIX)]


def upstream_headers(headers: Sequence[tuple[str, str]], *, provider: str, secret: str | None) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if k not in _NOT_FORWARDED]
    if secret:
        if provider == "azure-openai":
            out.append(("api-key", secret))
        else:
            out.append(("Authorization", f"Bearer {secret}"))
    return out


def answer_subprotocol(offered: Sequence[str], upstream_chose: str | None) -> str | None:
    """The subprotocol for our 101: only ever one the client offered.

    Accepting one the client did not offer breaks its handshake (and crashes hypercorn's server,
    a reason the front door does not use hypercorn for WebSockets). A browser that offered
    subprotocols fails the connection when none is chosen, so `realtime` is answered when offered.
    """
    if upstream_chose and upstream_chose in offered:
        return upstream_chose
    if "realtime" in offered:
        return "realtime"
    return None
