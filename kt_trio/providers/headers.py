"""The one list of client request headers that may travel upstream, for every door.

An allow-list, not a deny-list: a header the gateway does not know stays on the client's hop.
Deny-lists drifted (three of them disagreed) and let `Cookie`, `Origin` and `X-Forwarded-*`
through; with an allow-list a new browser or proxy header is never forwarded by accident.

Never forwarded, whatever the list says: hop-by-hop headers (RFC 9110 §7.6.1) and every header a
`Connection` header names, `Host` (the target's own), the client's credentials for the gateway
(DESIGN.md: the target's secret is injected instead), `Cookie`, `Origin`, `X-Forwarded-*`,
`Forwarded`. Values are bytes as they arrived: nothing is decoded or re-encoded on the way.
"""

from __future__ import annotations

from collections.abc import Iterable

# Headers an OpenAI, Azure OpenAI or Anthropic client legitimately sends about its request.
_ALLOWED = frozenset(
    {
        b"accept",
        b"accept-language",
        b"user-agent",
        b"openai-beta",
        b"openai-organization",
        b"openai-project",
        b"idempotency-key",
        b"x-client-request-id",
        b"x-request-id",
        b"traceparent",
        b"tracestate",
        b"anthropic-version",
        b"anthropic-beta",
    }
)
# What the official SDKs add about themselves (x-stainless-lang, -os, -retry-count, ...).
_ALLOWED_PREFIXES = (b"x-stainless-",)
# Only where a body is forwarded (HTTP passthrough): a WebSocket upgrade has none, and a
# Content-Length on it would make the provider wait for a body that never comes.
_BODY = frozenset({b"content-type", b"content-length", b"content-encoding", b"accept-encoding"})
# Never, even if a future edit puts them in a list above.
_NEVER = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"authorization",
        b"api-key",
        b"x-api-key",
        b"cookie",
        b"origin",
        b"forwarded",
    }
)


def _name(name: bytes | str) -> bytes:
    return (name.encode("latin-1") if isinstance(name, str) else name).lower()


def is_forwarded(name: bytes | str, *, with_body: bool) -> bool:
    """Whether a client request header of this name may go upstream (ignoring `Connection`)."""
    low = _name(name)
    if low in _NEVER or low.startswith(b"x-forwarded-"):
        return False
    return low in _ALLOWED or low.startswith(_ALLOWED_PREFIXES) or (with_body and low in _BODY)


def forwarded_headers(headers: Iterable[tuple[bytes | str, bytes]], *, with_body: bool) -> list[tuple[bytes, bytes]]:
    """The client's headers that go upstream, in their order, names lower-cased, values as bytes.

    `with_body`: the request's body is forwarded too (HTTP), so its framing and type headers go.
    """
    pairs = [(_name(k), v) for k, v in headers]
    named: set[bytes] = set()
    for k, v in pairs:
        if k == b"connection":  # RFC 9110 §7.6.1: and every header it names
            named.update(t.strip().lower() for t in v.split(b","))
    return [(k, v) for k, v in pairs if k not in named and is_forwarded(k, with_body=with_body)]
