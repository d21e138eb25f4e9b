"""`POST /v1/responses` over HTTP (placeholder until the door lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kt_trio.keys import KeyInfo
from kt_trio.providers.errors import refusal

if TYPE_CHECKING:
    from kt_trio.chat.app import ChatApp, Receive, Scope, Send


async def responses(app: ChatApp, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
    raise refusal(
        501,
        "invalid_request_error",
        "unsupported_route",
        "POST /v1/responses over HTTP is not served yet; use the WebSocket mode.",
    )
