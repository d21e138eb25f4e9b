"""The ASGI handler of a pack's governed HTTP front doors (issues 8 and 14): every `/v1/*`
request that is not a WebSocket upgrade.

DESIGN.md "Every front door governed, no route around it": `/v1/chat/completions`,
`/v1/responses` and `/v1/embeddings` are parsed and judged by the policy chain
(`completions`, `responses`, `embeddings`); `/v1/models` lists the HTTP targets;
`/v1/realtime/client_secrets` is answered by the gateway itself (`client_secrets`);
`/v1/realtime/calls` (WebRTC) is 501; only the path prefixes of `gateway.http.passthrough_paths`
pass through unparsed (`passthrough`); any other `/v1/*` path is 404 `unsupported_route`, so no
text reaches a provider ungoverned by default.

This module is the router and what the doors share: the key's limits and budget (`admit`), its
model allow-list, the target by `model`, and the `Exchange` that records one request. The
upstream call with breaker and fallback is `kt_trio.chat.upstream`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx
import trio
from attrs import frozen

from kt_trio.audit.entries import AuditError
from kt_trio.chat.asgi_io import ClientGone, header, respond, shield_last_body
from kt_trio.chat.body import JSON_LIMITS, check_declared_length, parse_json, read_body
from kt_trio.chat.completions import chat_completions
from kt_trio.chat.embeddings import embeddings
from kt_trio.chat.exchange import Exchange
from kt_trio.chat.passthrough import Passthrough
from kt_trio.chat.responses import responses
from kt_trio.chat.upstream import default_http_client
from kt_trio.config.routing import pick_target
from kt_trio.config.schema import GatewayConfig, Target
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.governance.spend import SpendMeter, refusal_message
from kt_trio.guardrail.client import Guardrail
from kt_trio.keys import KeyInfo
from kt_trio.policies.chain import PolicyChain, chain_of
from kt_trio.pricing import Pricing
from kt_trio.protocol.azure_paths import AZURE_DEPLOYMENT
from kt_trio.protocol.errors import dumps
from kt_trio.providers.errors import HttpRefusal, refusal
from kt_trio.records import Record
from kt_trio.reporting import AuditSink, KeyTokens
from kt_trio.telemetry.spans import traced_request

if TYPE_CHECKING:
    from kt_trio.telemetry.tracing import Tracing

log = logging.getLogger("kt_trio.chat")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Report = Callable[[str | None, Record], None]
# What the gateway lends ChatApp (see `ChatApp.__init__`).
AuditSource = Callable[[], AuditSink | None]
KeyLimiter = Callable[[KeyInfo], MessageRateLimiter | None]
KeyBudget = Callable[[KeyInfo], Awaitable[KeyTokens | None]]
KeySpend = Callable[[KeyInfo], Awaitable[SpendMeter | None]]


@frozen
class Admitted:
    """What an admitted request is charged to: its key's daily tokens and daily USD budgets."""

    tokens: KeyTokens | None = None
    spend: SpendMeter | None = None


# A governed door: (app, scope, receive, send, key).
Door = Callable[["ChatApp", Scope, Receive, Send, KeyInfo | None], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
EMBEDDINGS_PATH = "/v1/embeddings"
MODELS_PATH = "/v1/models"
CLIENT_SECRETS_PATH = "/v1/realtime/client_secrets"
REALTIME_CALLS_PATH = "/v1/realtime/calls"


def model_not_allowed(key: KeyInfo, model: object) -> HttpRefusal:
    return refusal(
        403,
        "permission_error",
        "model_not_allowed",
        f"gateway key {key.name!r} may not use model {model!r} (allowed: {', '.join(key.models or ())})",
    )


def check_model(key: KeyInfo | None, model: object) -> None:
    """`keys create --models`: a key (and its client secrets) may only use those models."""
    if key is not None and key.models is not None and model not in key.models:
        raise model_not_allowed(key, model)


class ChatApp:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        secrets: Mapping[str, str],
        health: UpstreamHealth,
        report: Report,
        http_client_factory: Callable[[], httpx.AsyncClient] | None = None,
        chain: PolicyChain | None = None,
        audit: AuditSource | None = None,
        key_limiter: KeyLimiter | None = None,
        key_tokens: KeyBudget | None = None,
        client_ip: Callable[[str, str | None], str] | None = None,
        client_secrets: Door | None = None,
        pricing: Pricing | None = None,
        guardrail: Guardrail | None = None,
        key_spend: KeySpend | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """`audit`: the audit log when `audit-logger` runs (a callable: the gateway opens the log
        after building us). `key_limiter`: a key's shared `messages_per_minute` bucket, the one
        its WebSocket sessions use. `key_tokens`: a key's daily token budget, refreshed.
        `client_ip(peer, x_forwarded_for)`: the client's address as sessions see it (the header
        is believed only from `gateway.trusted_proxies`); by default the TCP peer.
        `client_secrets`: the gateway's `/v1/realtime/client_secrets` door (it owns the keys).
        `pricing`: the gateway's price table (costs on usage records); by default the config's.
        `key_spend`: the key's and its team's daily USD budgets, refreshed.
        `tracing`: the gateway's OpenTelemetry traces when on (a span per governed request)."""
        self.config = config
        self.secrets = secrets
        self.health = health
        self.report = report
        self.pricing = pricing if pricing is not None else Pricing(config.pricing)
        self.chain = chain if chain is not None else chain_of(config)
        self.guardrail = guardrail  # `external-guardrail`: judges whole request and answer texts
        self.tracing = tracing
        self._audit = audit or (lambda: None)
        self._key_limiter = key_limiter
        self._key_tokens = key_tokens
        self._key_spend = key_spend
        self._client_ip = client_ip or (lambda peer, _forwarded: peer)
        self._client_factory = http_client_factory or default_http_client
        self._client: httpx.AsyncClient | None = None
        self.http_targets = tuple(t for t in config.providers.targets if t.effective_transport == "http")
        self.passthrough = Passthrough(config, secrets=secrets, health=health, client=lambda: self.client)
        self._doors: dict[str, Door] = {CHAT_PATH: chat_completions, RESPONSES_PATH: responses}
        self._doors[EMBEDDINGS_PATH] = embeddings
        if client_secrets is not None:
            self._doors[CLIENT_SECRETS_PATH] = client_secrets

    @staticmethod
    def handles(scope: Scope) -> bool:
        """Every `/v1/*` HTTP request: governed, passed through when listed, or refused."""
        return scope.get("type") == "http" and str(scope.get("path", "")).startswith("/v1/")

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, *, key: KeyInfo | None = None) -> None:
        """`key`: the client's gateway key once `HttpApp` accepted it; None for an anonymous client."""
        send = shield_last_body(send)
        path, method = str(scope.get("path", "")), scope.get("method")
        try:
            door = self._doors.get(path)
            if path == MODELS_PATH and method in ("GET", "HEAD"):
                await respond(send, 200, dumps(self.models(key)))
            elif door is not None and method == "POST":
                check_declared_length(scope, JSON_LIMITS)  # 413 before a byte of the body is read
                self._check_audit()
                with traced_request(self.tracing, scope):
                    await door(self, scope, receive, send, key)
            elif door is not None or path == MODELS_PATH:
                raise refusal(405, "invalid_request_error", "method_not_allowed", f"{method} is not allowed on {path}")
            elif path == REALTIME_CALLS_PATH or path.startswith(REALTIME_CALLS_PATH + "/"):
                raise refusal(
                    501,
                    "invalid_request_error",
                    "unsupported_route",
                    "WebRTC calls are not served by this gateway; open a WebSocket to /v1/realtime instead.",
                )
            elif self.passthrough.allows(path):
                self._check_audit()
                await self.admit(key)
                await self._passthrough(scope, receive, send, key)
            else:
                raise refusal(
                    404,
                    "invalid_request_error",
                    "unsupported_route",
                    f"{path} is not served by this gateway: only the governed routes and the path prefixes in"
                    " gateway.http.passthrough_paths are",
                )
        except HttpRefusal as r:
            await respond(send, r.status, r.body, r.headers)
        except AuditError as exc:
            # The store failed during the request (kt_trio.audit): nothing unrecorded went upstream.
            log.warning("chat request: %s", exc)
            down = _audit_unavailable()
            with contextlib.suppress(Exception):  # the answer may have started: then it ends short
                await respond(send, down.status, down.body, down.headers)
        except ClientGone:
            pass

    def _check_audit(self) -> None:
        """503 `audit_unavailable` while the audit store fails, before anything is read or sent."""
        audit = self._audit()
        if audit is not None and not getattr(audit, "available", True):
            raise _audit_unavailable()

    def models(self, key: KeyInfo | None = None) -> dict[str, Any]:
        seen: dict[str, Target] = {}
        for t in self.http_targets:
            if t.model is not None and (key is None or key.models is None or t.model in key.models):
                seen.setdefault(t.model, t)
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": t.provider} for m, t in seen.items()],
        }

    def find_target(self, model: Any, deployment: str | None = None) -> Target | None:
        """The HTTP target for a request: by Azure deployment, model, id, then model family."""
        if not isinstance(model, str):
            model = None
        if model is None and deployment is None:
            return None
        by_family = self.config.providers.routing.by_family
        return pick_target(self.http_targets, model, deployment=deployment, by_family=by_family)

    # -- what every governed door does first ----------------------------------------------------

    async def read_request(self, receive: Receive) -> tuple[dict[str, Any], int]:
        """The client's JSON object and its size in bytes; 400 / 408 / 413 otherwise, within the
        body limits of `kt_trio.chat.body` (size, data rate, JSON elements and depth)."""
        body = await read_body(receive, JSON_LIMITS)
        request = await parse_json(body, JSON_LIMITS)
        size = len(body)
        del body  # the parsed request is what is kept; a large raw body need not live on with it
        if not isinstance(request, dict):
            raise refusal(400, "invalid_request_error", "invalid_request", "The body must be a JSON object.")
        return request, size

    def target_for(self, request: dict[str, Any], key: KeyInfo | None, scope: Scope) -> Target:
        """The target of the request's `model`, or of the Azure deployment its URL named (404
        when none serves it; 403 when the key may not use it)."""
        model = request.get("model")
        check_model(key, model)
        primary = self.find_target(model, scope.get(AZURE_DEPLOYMENT))
        if primary is None:
            raise refusal(404, "invalid_request_error", "model_not_found", f"The model {model!r} does not exist.")
        return primary

    async def admit(self, key: KeyInfo | None) -> Admitted | None:
        """The key's per-minute limit (one request is one message), daily token budget and daily
        USD budgets (its own and its team's), as its WebSocket sessions have them; refuses with
        429. Returns the budgets to charge, if any."""
        if key is None:
            return None
        limiter = self._key_limiter(key) if self._key_limiter is not None else None
        if limiter is not None:
            now = trio.current_time()
            decision = limiter.check(None, now)
            if decision.action == "reject":
                per_minute = limiter.bucket.rate_per_sec * 60
                wait = max(1, math.ceil(limiter.bucket.delay_until(now) - now))
                raise refusal(
                    429,
                    "rate_limit_exceeded",
                    "rate_limit_exceeded",
                    f"Rate limit of {per_minute:g} requests per minute exceeded for this key.",
                    retry_after=str(wait),
                )
            if decision.action == "delay" and decision.until is not None:
                await trio.sleep_until(decision.until)  # backpressure: this request waits its turn
        budget = await self._key_tokens(key) if self._key_tokens is not None else None
        if budget is not None and budget.exhausted:
            raise refusal(
                429,
                "budget_exceeded",
                "budget_exceeded",
                "Daily token budget of this key exceeded; no new responses can be created with this key today.",
            )
        spend = await self._key_spend(key) if self._key_spend is not None else None
        spent = spend.exhausted if spend is not None else None
        if spent is not None:
            raise refusal(429, "budget_exceeded", "budget_exceeded", refusal_message(spent))
        return Admitted(budget, spend)

    def exchange(
        self,
        id_prefix: str,
        route: str,
        target: Target,
        scope: Scope,
        key: KeyInfo | None,
        *,
        admitted: Admitted | None = None,
        keep_content: bool = True,
        event_type: str = "chat.completion",
    ) -> Exchange:
        client = scope.get("client")
        return Exchange(
            session_id=id_prefix + uuid.uuid4().hex,
            route=route,
            target=target,
            client_ip=self._client_ip(client[0] if client else "", header(scope, b"x-forwarded-for")),
            key=key,
            user_agent=header(scope, b"user-agent"),
            report=self.report,
            audit=self._audit(),
            key_tokens=admitted.tokens if admitted is not None else None,
            spend=admitted.spend if admitted is not None else None,
            keep_content=keep_content,
            event_type=event_type,
            pricing=self.pricing,
        )

    async def _passthrough(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
        """A listed `/v1/*` request, audited (start and end, no content: the bodies, maybe files,
        are streamed unread) and on the event stream like a chat request."""
        target = self.passthrough.target
        if target is None:
            await self.passthrough(scope, receive, send)  # its 404, like any refusal not audited
            return
        ex = self.exchange("http_", str(scope.get("path", "")), target, scope, key, keep_content=False)
        async with ex.until_finished():
            length = header(scope, b"content-length")
            ex.start(int(length) if length and length.isdigit() else 0)
            await ex.write()  # nothing goes upstream unaudited
            await self.passthrough(scope, receive, ex.wrap(send))


def _audit_unavailable() -> HttpRefusal:
    message = "The audit log is unavailable; retry later."
    return refusal(503, "server_error", "audit_unavailable", message, retry_after="5")
