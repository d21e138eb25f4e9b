"""What of the client's handshake goes upstream, and what the gateway adds (pure rules).

DESIGN.md: client credentials are never forwarded; the target's own secret is injected instead;
`OpenAI-Beta` passes only if the client sent it (OpenAI rejects `realtime=v1` on GA models, so
the gateway never adds it); which client headers go at all is `kt_trio.providers.headers`' one list.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import frozen

from kt_trio.providers.auth import auth_header
from kt_trio.providers.headers import forwarded_headers

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


def upstream_headers(
    raw_headers: Sequence[tuple[bytes, bytes]], *, provider: str, secret: str | None
) -> list[tuple[bytes, bytes]]:
    """The client's allowed headers (`kt_trio.providers.headers`, bytes as they arrived) plus
    the target's secret. The handshake's own headers (key, version, subprotocols) are the
    dialler's to write, so they are not among the allowed ones."""
    out = forwarded_headers(raw_headers, with_body=False)
    auth = auth_header(provider, secret)
    if auth is not None:
        out.append((auth[0].encode(), auth[1].encode()))
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
