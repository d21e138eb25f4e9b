"""The ASGI handler for `POST /v1/chat/completions` and `GET /v1/models` (issue 8).

With `kt_trio.chat.passthrough` (every other `/v1/*` request) and `kt_trio.chat.exchange` (the
records one request leaves), the only modules of `kt_trio.chat` that do I/O: it reads the
client's request, asks the policies (`kt_trio.chat.policy`), picks a target and its fallbacks
through `UpstreamHealth`, speaks to the provider with one pooled `httpx.AsyncClient`, and writes
the response. A streamed response is written chunk by chunk as the upstream's chunks arrive:
nothing is buffered beyond the PII tail the split-safe redactor must hold.

`handles(scope)` says whether a request is ours, so the gateway's `HttpApp` can chain to it.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextlib import AsyncExitStack
from typing import Any, Literal

import httpx
import trio

from kt_trio.chat import anthropic, openai, sse
from kt_trio.chat.asgi_io import ClientGone, shield_last_body, watch_disconnect
from kt_trio.chat.exchange import Exchange
from kt_trio.chat.passthrough import Passthrough
from kt_trio.chat.policy import ChatPolicies, Stop
from kt_trio.chat.stream import ChunkFilter, dumps, error_chunk
from kt_trio.config.routing import pick_target
from kt_trio.config.schema import GatewayConfig, Target
from kt_trio.governance.breaker import Permit, UpstreamHealth
from kt_trio.governance.rate_limit import MessageRateLimiter
from kt_trio.keys import KeyInfo
from kt_trio.policies.chain import PolicyChain, chain_of
from kt_trio.protocol.azure_paths import AZURE_DEPLOYMENT
from kt_trio.records import PolicyDecision, Record
from kt_trio.session.governor import KeyTokens
from kt_trio.session.session import AuditSink

log = logging.getLogger("kt_trio.chat")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Report = Callable[[str | None, Record], None]
# What the gateway lends ChatApp (see `ChatApp.__init__`).
AuditSource = Callable[[], AuditSink | None]
KeyLimiter = Callable[[KeyInfo], MessageRateLimiter | None]
KeyBudget = Callable[[KeyInfo], Awaitable[KeyTokens | None]]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
# A chat request with images inlined as base64 can be several MiB; more is refused with 413.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
# A non-streamed upstream answer is read whole (the output policies judge it whole).
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def default_http_client() -> httpx.AsyncClient:
    """One pool for every chat request; per-request timeouts come from the target's settings."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(300.0, connect=10.0),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30.0),
        follow_redirects=False,
        trust_env=False,
    )


class _Refusal(Exception):
    """An answer to give the client instead of a completion."""

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        origin: Literal["gateway", "upstream"] = "gateway",
        reason: str = "upstream_error",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        # Who answered and why, for the audit record's `closed_by` and `close_reason`.
        self.origin = origin
        self.reason = reason


def _error(status: int, err_type: str, code: str, message: str, **headers: str) -> _Refusal:
    body = dumps({"error": {"type": err_type, "code": code, "message": message, "param": None}})
    encoded = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return _Refusal(status, body, encoded, reason=code)


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
    ) -> None:
        """`audit`: the audit log when `audit-logger` runs (a callable: the gateway opens the log
        after building us). `key_limiter`: a key's shared `messages_per_minute` bucket, the one
        its WebSocket sessions use. `key_tokens`: a key's daily token budget, refreshed.
        `client_ip(peer, x_forwarded_for)`: the client's address as sessions see it (the header
        is believed only from `gateway.trusted_proxies`); by default the TCP peer."""
        self.config = config
        self.secrets = secrets
        self.health = health
        self.report = report
        self.chain = chain if chain is not None else chain_of(config)
        self._audit = audit or (lambda: None)
        self._key_limiter = key_limiter
        self._key_tokens = key_tokens
        self._client_ip = client_ip or (lambda peer, _forwarded: peer)
        self._client_factory = http_client_factory or default_http_client
        self._client: httpx.AsyncClient | None = None
        self.http_targets = tuple(t for t in config.providers.targets if t.effective_transport == "http")
        self.passthrough = Passthrough(config, secrets=secrets, health=health, client=lambda: self.client)

    @staticmethod
    def handles(scope: Scope) -> bool:
        """Chat completions, models, and every other `/v1/*` request (passed through)."""
        return scope.get("type") == "http" and (
            scope.get("path") in (CHAT_PATH, MODELS_PATH) or Passthrough.handles(scope)
        )

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
        path, method = scope.get("path"), scope.get("method")
        try:
            if path == MODELS_PATH and method in ("GET", "HEAD"):
                await _respond(send, 200, dumps(self.models()))
            elif path == CHAT_PATH and method == "POST":
                await self._chat(scope, receive, send, key)
            elif path in (MODELS_PATH, CHAT_PATH):
                raise _error(405, "invalid_request_error", "method_not_allowed", f"{method} is not allowed on {path}")
            elif Passthrough.handles(scope):
                await self.admit(key)
                await self._passthrough(scope, receive, send, key)
            else:
                raise _error(404, "invalid_request_error", "not_found", f"no route for {method} {path}")
        except _Refusal as r:
            await _respond(send, r.status, r.body, r.headers)
        except ClientGone:
            pass

    def models(self) -> dict[str, Any]:
        seen: dict[str, Target] = {}
        for t in self.http_targets:
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

    # -- one completion -------------------------------------------------------------------------

    async def admit(self, key: KeyInfo | None) -> KeyTokens | None:
        """The key's per-minute limit (one request is one message) and daily token budget, as its
        WebSocket sessions have them; refuses with 429. Returns the budget to charge, if any."""
        if key is None:
            return None
        limiter = self._key_limiter(key) if self._key_limiter is not None else None
        if limiter is not None:
            now = trio.current_time()
            decision = limiter.check(None, now)
            if decision.action == "reject":
                per_minute = limiter.bucket.rate_per_sec * 60
                wait = max(1, math.ceil(limiter.bucket.delay_until(now) - now))
                raise _error(
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
            raise _error(
                429,
                "budget_exceeded",
                "budget_exceeded",
                "Daily token budget of this key exceeded; no new responses can be created with this key today.",
            )
        return budget

    async def _chat(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
        body = await _read_body(receive)
        try:
            request = json.loads(body)
        except ValueError as exc:
            raise _error(400, "invalid_request_error", "invalid_json", f"The body is not valid JSON: {exc}") from None
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            raise _error(400, "invalid_request_error", "invalid_request", "The body must be an object with 'messages'.")
        primary = self.find_target(request.get("model"), scope.get(AZURE_DEPLOYMENT))
        if primary is None:
            raise _error(
                404, "invalid_request_error", "model_not_found", f"The model {request.get('model')!r} does not exist."
            )
        budget = await self.admit(key)
        ex = self._exchange("chat_", CHAT_PATH, primary, scope, key, key_tokens=budget)
        async with ex.until_finished():
            ex.start(len(body))
            await self._judged_chat(ex, request, receive, ex.wrap(send))

    def _exchange(
        self,
        id_prefix: str,
        route: str,
        target: Target,
        scope: Scope,
        key: KeyInfo | None,
        *,
        key_tokens: KeyTokens | None = None,
        keep_content: bool = True,
    ) -> Exchange:
        client = scope.get("client")
        return Exchange(
            session_id=id_prefix + uuid.uuid4().hex,
            route=route,
            target=target,
            client_ip=self._client_ip(client[0] if client else "", _header(scope, b"x-forwarded-for")),
            key=key,
            user_agent=_header(scope, b"user-agent"),
            report=self.report,
            audit=self._audit(),
            key_tokens=key_tokens,
            keep_content=keep_content,
        )

    async def _passthrough(self, scope: Scope, receive: Receive, send: Send, key: KeyInfo | None) -> None:
        """Another `/v1/*` request, audited (start and end, no content: the bodies, maybe files,
        are streamed unread) and on the event stream like a chat request."""
        target = self.passthrough.target
        if target is None:
            await self.passthrough(scope, receive, send)  # its 404, like any refusal not audited
            return
        ex = self._exchange("http_", str(scope.get("path", "")), target, scope, key, keep_content=False)
        async with ex.until_finished():
            length = _header(scope, b"content-length")
            ex.start(int(length) if length and length.isdigit() else 0)
            await ex.write()  # nothing goes upstream unaudited
            await self.passthrough(scope, receive, ex.wrap(send))

    async def _judged_chat(self, ex: Exchange, request: dict[str, Any], receive: Receive, send: Send) -> None:
        policies = ChatPolicies(self.chain)
        decisions: list[PolicyDecision] = []
        try:
            policies.judge_request(request, decisions)
        except Stop as stop:
            ex.request_seen(None, tuple(decisions))
            ex.decisions(decisions)
            ex.ended_by("gateway", f"policy_violation: {stop.policy}")
            r = _error(400, "policy_violation", stop.policy, stop.reason)
            await _respond(send, r.status, r.body, r.headers)
            return
        ex.request_seen(request, tuple(decisions))
        ex.decisions(decisions)
        await ex.write()  # nothing goes upstream unaudited
        async with trio.open_nursery() as nursery:
            # The client going away cancels the upstream request (and its stream) at once.
            nursery.start_soon(watch_disconnect, receive, nursery.cancel_scope)
            try:
                await self._complete(ex, request, policies, send)
            except _Refusal as r:  # answered here: the nursery would wrap it in an ExceptionGroup
                ex.ended_by(r.origin, r.reason)
                await _respond(send, r.status, r.body, r.headers)
            finally:
                nursery.cancel_scope.cancel()

    def _candidates(self, primary: Target) -> list[Target]:
        """The primary, other targets of its model, then its `providers.fallback`: HTTP ones only."""
        return [t for t in self.config.candidate_targets(primary) if t.effective_transport == "http"]

    async def _complete(self, ex: Exchange, request: dict[str, Any], policies: ChatPolicies, send: Send) -> None:
        candidates = self._candidates(ex.target)
        last: _Refusal | None = None
        for target in candidates:
            permit = self.health.acquire(target.id, trio.current_time())
            if permit is None:
                continue
            try:
                ex.target = target
                await self._try_target(ex, target, permit, request, policies, send)
                return
            except _Retry as retry:
                last = retry.refusal
        if last is not None:
            raise last
        retry_after = self.health.retry_after([t.id for t in candidates], trio.current_time())
        raise _error(
            503,
            "upstream_unavailable",
            "circuit_open",
            "Every upstream for this model is unavailable; retry later.",
            retry_after=str(retry_after),
        )

    async def _try_target(
        self,
        ex: Exchange,
        target: Target,
        permit: Permit,
        request: dict[str, Any],
        policies: ChatPolicies,
        send: Send,
    ) -> None:
        stream = bool(request.get("stream"))
        secret = self.secrets.get(target.id)
        if target.provider == "anthropic":
            opts = request.get("stream_options")
            client_wants_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
            url = anthropic.messages_url(target)
            upstream_body = anthropic.to_messages_request(request, target)
            headers = anthropic.headers(secret, stream=stream)
        else:
            upstream_body = dict(request)
            client_wants_usage = openai.prepare(upstream_body, target)
            url = openai.chat_url(target)
            headers = openai.headers(target, secret, stream=stream)
        settings = self.config.session_settings(target)
        timeout = httpx.Timeout(settings.idle_timeout_secs, connect=settings.connect_timeout_secs)
        req = self.client.build_request("POST", url, content=dumps(upstream_body), headers=headers, timeout=timeout)
        async with AsyncExitStack() as stack:
            try:
                resp = await self.client.send(req, stream=True)
            except httpx.HTTPError as exc:
                self.health.record_failure(permit, trio.current_time(), f"chat upstream: {type(exc).__name__}")
                raise _Retry(
                    _error(
                        502,
                        "upstream_error",
                        "upstream_unreachable",
                        f"The upstream could not be reached ({type(exc).__name__}).",
                    )
                ) from None
            except BaseException:
                self.health.abandon(permit)
                raise
            stack.push_async_callback(resp.aclose)
            if resp.status_code >= 400:
                raw = await _read_limited(resp)
                refusal = self._upstream_error(target, resp, raw)
                if resp.status_code >= 500 or resp.status_code == 429:
                    self.health.record_failure(permit, trio.current_time(), f"chat upstream: HTTP {resp.status_code}")
                    raise _Retry(refusal)
                self.health.record_success(permit, trio.current_time())
                raise refusal
            self.health.record_success(permit, trio.current_time())
            if stream:
                await self._relay_stream(ex, target, resp, policies, send, client_wants_usage)
            else:
                await self._relay_whole(ex, target, resp, policies, send)

    def _upstream_error(self, target: Target, resp: httpx.Response, raw: bytes) -> _Refusal:
        headers = []
        retry_after = resp.headers.get("retry-after")
        if retry_after:
            headers.append((b"retry-after", retry_after.encode()))
        if target.provider == "anthropic":
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            status, body = anthropic.error_of(resp.status_code, parsed)
            return _Refusal(status, dumps(body), headers, "upstream")
        try:
            ok = isinstance(json.loads(raw).get("error"), dict)
        except (ValueError, AttributeError):
            ok = False
        if ok:  # already OpenAI-shaped: pass it through
            return _Refusal(resp.status_code, raw, headers, "upstream")
        body = {"error": {"type": "upstream_error", "code": f"http_{resp.status_code}", "message": "upstream error"}}
        return _Refusal(502 if resp.status_code >= 500 else resp.status_code, dumps(body), headers, "upstream")

    async def _relay_whole(
        self, ex: Exchange, target: Target, resp: httpx.Response, policies: ChatPolicies, send: Send
    ) -> None:
        raw = await _read_limited(resp)
        try:
            obj = json.loads(raw)
        except ValueError:
            raise _error(
                502, "upstream_error", "invalid_upstream_response", "The upstream's answer is not JSON."
            ) from None
        if target.provider == "anthropic":
            usage = anthropic.usage_of(obj.get("usage") if isinstance(obj, dict) else None)
            obj = anthropic.to_completion(obj, target.model)
            changed = True
        else:
            usage = openai.usage_of(obj.get("usage") if isinstance(obj, dict) else None)
            changed = False
        decisions: list[PolicyDecision] = []
        try:
            if isinstance(obj, dict) and policies.judge_response(obj, decisions):
                changed = True
        except Stop as stop:
            refusal = _error(400, "policy_violation", stop.policy, stop.reason)
            refusal.reason = f"policy_violation: {stop.policy}"
            raise refusal from None
        finally:
            ex.decisions(decisions)
            ex.usage(target, usage, obj.get("id") if isinstance(obj, dict) else None)
        await _respond(send, 200, dumps(obj) if changed else raw)

    async def _relay_stream(
        self,
        ex: Exchange,
        target: Target,
        resp: httpx.Response,
        policies: ChatPolicies,
        send: Send,
        client_wants_usage: bool,
    ) -> None:
        is_anthropic = target.provider == "anthropic"
        filt = ChunkFilter(
            policies,
            client_wants_usage=client_wants_usage,
            usage_of=openai.usage_of,  # the translated stream's usage chunk is in OpenAI's shape
        )
        translator = anthropic.StreamTranslator(target.model, include_usage=True) if is_anthropic else None
        parser = sse.SseParser()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        usage_reported = False

        def report_usage() -> None:
            # Reported as soon as known, before the bytes that end the client's stream.
            nonlocal usage_reported
            if filt.usage is not None and not usage_reported:
                usage_reported = True
                ex.usage(target, filt.usage, filt.response_id)

        try:
            async for chunk in resp.aiter_bytes():
                out: list[bytes] = []
                for ev in parser.feed(chunk):
                    if translator is None:
                        out.extend(filt.on_event(ev))
                        continue
                    if ev.data is None:
                        continue
                    try:
                        event = json.loads(ev.data)
                    except ValueError:
                        continue
                    for obj in translator.feed(event):
                        out.extend(filt.on_chunk(obj, None))
                ex.decisions(filt.decisions)
                if filt.done:
                    break
                if out:
                    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
            else:
                out = [*filt.flush(), sse.DONE]
            policies.after_stream(filt.decisions)
            end = b"".join(out)
        except Stop as stop:
            ex.ended_by("gateway", f"policy_violation: {stop.policy}")
            end = error_chunk("policy_violation", stop.policy, stop.reason) + sse.DONE
        except anthropic.StreamError as err:
            e = err.body["error"]
            ex.ended_by("upstream", "upstream_error")
            end = error_chunk(e["type"], e["code"], e["message"]) + sse.DONE
        except (httpx.HTTPError, sse.SseProtocolError) as exc:
            message = f"The upstream stream broke ({type(exc).__name__})."
            ex.ended_by("upstream", "stream_interrupted")
            end = error_chunk("upstream_error", "stream_interrupted", message) + sse.DONE
        finally:
            ex.decisions(filt.decisions)
            report_usage()
        await send({"type": "http.response.body", "body": end, "more_body": False})


class _Retry(Exception):
    """This target failed in a way another target may not (unreachable, 5xx, 429)."""

    def __init__(self, refusal: _Refusal) -> None:
        super().__init__(refusal.status)
        self.refusal = refusal


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise _error(413, "invalid_request_error", "request_too_large", "The request body is too large.")
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def _read_limited(resp: httpx.Response) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _error(502, "upstream_error", "upstream_response_too_large", "The upstream's answer is too large.")
        parts.append(chunk)
    return b"".join(parts)


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", ()):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
