"""The `/v1/*` paths listed in `gateway.http.passthrough_paths`, passed through unparsed to the
default OpenAI-compatible target.

Issue 14 (DESIGN.md "no route around it"): only those path prefixes pass through (default
`/v1/files`, `/v1/uploads`, `/v1/batches`: file bodies and batch jobs, which carry no prompt the
chain could judge as it streams); a prefix matches on path-segment boundaries (`/v1/files`
matches `/v1/files` and `/v1/files/abc`, never `/v1/filesystem`). Every other `/v1/*` path is
the router's 404 `unsupported_route` (`kt_trio.chat.app`), so no text reaches a provider
ungoverned unless the operator lists its path.

- The default target is the first `transport: http` target whose provider is `openai`. Not
  `azure-openai`: Azure names deployments in its paths (`/openai/deployments/{d}/...`) and wants
  `api-version`, so an OpenAI path has no faithful Azure equivalent; Anthropic speaks another API.
- The URL is the target's HTTP base URL (OpenAI's ends in `/v1`) plus the client's path after
  `/v1`, plus its query string as sent.
- Only the request headers on `kt_trio.providers.headers`' allow-list pass (never hop-by-hop
  ones, `Host`, `Cookie`, `Origin`, `X-Forwarded-*`, or the client's credentials, which never
  leave the gateway: DESIGN.md); the target's secret goes as `Authorization: Bearer`.
- Bodies stream both ways: the request body goes upstream as ASGI delivers it, the response comes
  back in the chunks it arrives in, as raw bytes (compressed stays compressed). Memory per
  request is one chunk each way; a slow reader slows the upstream read (backpressure).
- The circuit breaker is the chat's (`UpstreamHealth`): an unreachable target, a 5xx or a 429
  counts as a failure. There is no fallback to another target: a body streamed once cannot be
  replayed.
- Bodies are not parsed, so the policies do not judge them and no usage is counted; the key's
  per-minute limit and an exhausted daily budget still apply (`ChatApp.admit`).

Answers of our own: 404 (no OpenAI target), 503 with `Retry-After` (circuit open), 502 (target
unreachable), all OpenAI-shaped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx
import trio

from kt_trio.chat.asgi_io import ClientGone, respond, watch_disconnect
from kt_trio.chat.body import PASSTHROUGH_LIMITS, check_declared_length, iter_body
from kt_trio.config.schema import GatewayConfig, Target
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.providers.auth import auth_header
from kt_trio.providers.errors import refusal
from kt_trio.providers.headers import forwarded_headers

log = logging.getLogger("kt_trio.chat")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PREFIX = "/v1/"
_DROP_RESPONSE = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def default_target(config: GatewayConfig) -> Target | None:
    return next(
        (t for t in config.providers.targets if t.effective_transport == "http" and t.provider == "openai"), None
    )


class Passthrough:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        secrets: Mapping[str, str],
        health: UpstreamHealth,
        client: Callable[[], httpx.AsyncClient],
    ) -> None:
        self.config = config
        self.secrets = secrets
        self.health = health
        self._client = client  # the chat's pool, shared
        self.target = default_target(config)
        self.prefixes = tuple(p.rstrip("/") for p in config.gateway.http.passthrough_paths)

    def allows(self, path: str) -> bool:
        """Whether `path` is under one of `gateway.http.passthrough_paths`, on a segment boundary."""
        return any(path == p or path.startswith(p + "/") for p in self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.target
        if target is None:
            await _error(
                send, 404, "invalid_request_error", "not_found", "No OpenAI target is configured for this path."
            )
            return
        check_declared_length(scope, PASSTHROUGH_LIMITS)  # 413 before any upstream is involved
        now = trio.current_time()
        permit = self.health.acquire(target.id, now)
        if permit is None:
            retry_after = self.health.retry_after([target.id], now)
            message = "The upstream is unavailable; retry later."
            await _error(send, 503, "upstream_unavailable", "circuit_open", message, retry_after=str(retry_after))
            return
        client = self._client()
        settings = self.config.session_settings(target)
        request = client.build_request(
            scope["method"],
            self._url(target, scope),
            headers=self._headers(target, scope),
            content=iter_body(receive, PASSTHROUGH_LIMITS) if _has_body(scope) else None,
            timeout=httpx.Timeout(settings.idle_timeout_secs, connect=settings.connect_timeout_secs),
        )
        try:
            resp = await client.send(request, stream=True)
        except ClientGone:
            self.health.abandon(permit)
            return
        except httpx.HTTPError as exc:
            self.health.record_failure(permit, trio.current_time(), f"passthrough: {type(exc).__name__}")
            message = f"The upstream could not be reached ({type(exc).__name__})."
            await _error(send, 502, "upstream_error", "upstream_unreachable", message)
            return
        except BaseException:
            self.health.abandon(permit)
            raise
        try:
            if resp.status_code >= 500 or resp.status_code == 429:
                self.health.record_failure(permit, trio.current_time(), f"passthrough: HTTP {resp.status_code}")
            else:
                self.health.record_success(permit, trio.current_time())
            headers = [(k, v) for k, v in resp.headers.raw if k.lower() not in _DROP_RESPONSE]
            await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
            async with trio.open_nursery() as nursery:
                # The body was sent whole before the answer came, so `receive` is free to tell us
                # the client left: then the upstream read stops at once.
                nursery.start_soon(watch_disconnect, receive, nursery.cancel_scope)
                # Raw bytes: what the upstream sent, compressed or not, chunk by chunk. An error
                # mid-body propagates, so the server drops the connection and the client sees a
                # broken response rather than a silently short one.
                async for chunk in resp.aiter_raw():
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await resp.aclose()

    def _url(self, target: Target, scope: Scope) -> str:
        raw_path = scope.get("raw_path") or str(scope["path"]).encode()
        rest = raw_path.decode("latin-1")[len(PREFIX) - 1 :]  # "/v1/files/x" -> "/files/x"
        query = scope.get("query_string") or b""
        url = target.http_base_url.rstrip("/") + rest
        return url + "?" + query.decode("latin-1") if query else url

    def _headers(self, target: Target, scope: Scope) -> list[tuple[bytes, bytes]]:
        # The one allow-list of forwarded request headers (`kt_trio.providers.headers`).
        headers = forwarded_headers(scope.get("headers", ()), with_body=True)
        auth = auth_header(target.provider, self.secrets.get(target.id))
        if auth is not None:
            headers.append((auth[0].encode(), auth[1].encode()))
        return headers


def _has_body(scope: Scope) -> bool:
    for k, v in scope.get("headers", ()):
        name = k.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and v.strip() not in (b"", b"0")):
            return True
    return False


async def _error(send: Send, status: int, err_type: str, code: str, message: str, **headers: str) -> None:
    r = refusal(status, err_type, code, message, **headers)
    await respond(send, r.status, r.body, r.headers)
