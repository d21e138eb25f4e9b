"""`POST /v1/realtime/client_secrets` (issue 14): the gateway mints a short-lived `kt_ek_`
secret for the caller's key and answers in OpenAI's response shape; the provider is never
called (its ephemeral key would let a browser talk to it with no gateway in between).

Body as OpenAI's: `expires_after: {"anchor": "created_at", "seconds": N}` (default 600, at most
7200) and an optional `session` (echoed back; its `model`, if any, must be one the key may
use). Answer: `{"value": "kt_ek_...", "expires_at": <epoch seconds>, "session": {...}}`.
The key scope is `realtime` (checked by `HttpApp`); an anonymous client has no key to bind a
secret to and is refused with 401. The secret works on every process sharing the gateway's state
(`kt_trio.keys.client_secrets`); with `state.backend: redis` and `on_unavailable: fail_closed`,
minting while Redis is away is 503 `state_unavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kt_trio.chat.app import check_model
from kt_trio.chat.asgi_io import respond
from kt_trio.keys import KeyInfo
from kt_trio.keys.client_secrets import (
    DEFAULT_TTL_SECS,
    MAX_TTL_SECS,
    MIN_TTL_SECS,
    SecretsUnavailable,
    TooManySecrets,
)
from kt_trio.protocol.errors import dumps
from kt_trio.providers.errors import refusal

if TYPE_CHECKING:
    from kt_trio.chat.app import ChatApp, Door, Receive, Scope, Send

# mint(key, ttl seconds) -> (secret, expires_at)
Mint = Callable[[KeyInfo, float], Awaitable[tuple[str, float]]]


def _ttl(request: dict[str, Any]) -> float:
    expires = request.get("expires_after")
    if expires is None:
        return DEFAULT_TTL_SECS
    seconds = expires.get("seconds", DEFAULT_TTL_SECS) if isinstance(expires, dict) else None
    anchor = expires.get("anchor", "created_at") if isinstance(expires, dict) else None
    if (
        anchor != "created_at"
        or not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not MIN_TTL_SECS <= seconds <= MAX_TTL_SECS
    ):
        raise refusal(
            400,
            "invalid_request_error",
            "invalid_expires_after",
            f"expires_after must be {{'anchor': 'created_at', 'seconds': {MIN_TTL_SECS}..{MAX_TTL_SECS}}}.",
        )
    return float(seconds)


def client_secrets_door(mint: Mint) -> Door:
    async def client_secrets(app: ChatApp, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
        request, _ = await app.read_request(receive)
        if key is None:
            raise refusal(
                401,
                "authentication_error",
                "invalid_key",
                "client secrets are minted for a gateway key: send Authorization: Bearer kt_gk_...",
            )
        ttl = _ttl(request)
        session = request.get("session")
        if session is None:
            session = {"type": "realtime"}
        if not isinstance(session, dict):
            raise refusal(400, "invalid_request_error", "invalid_request", "'session' must be an object.")
        if "model" in session:
            check_model(key, session["model"])
        try:
            value, expires_at = await mint(key, ttl)
        except TooManySecrets:
            raise refusal(
                429, "rate_limit_exceeded", "too_many_client_secrets", "Too many live client secrets; retry later."
            ) from None
        except SecretsUnavailable as exc:
            raise refusal(503, "server_error", "state_unavailable", str(exc), retry_after="1") from None
        await respond(send, 200, dumps({"value": value, "expires_at": int(expires_at), "session": session}))

    return client_secrets
