"""One upstream HTTP call of a governed front door: the target, then its fallbacks, each behind
its circuit breaker (I/O).

Chat completions, Responses and embeddings all go upstream the same way: a target that cannot be
reached, answers 5xx or 429 counts as a breaker failure and the next candidate is tried (the
request body is in memory, so it can be sent again); another 4xx is the provider's answer to
this request and goes back to the client translated (`kt_trio.providers.errors`); with every
candidate's circuit open the client gets 503 with `Retry-After`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

from kt_trio.config.schema import GatewayConfig, Target
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.providers.errors import HttpRefusal, refusal, upstream_refusal
from kt_trio.telemetry.context import upstream_call
from kt_trio.telemetry.genai import CHAT, ERROR_TYPE, OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL, provider_name

# A non-streamed upstream answer (or an error body) is read whole: the output policies judge it
# whole. Far above any completion; bounds what a broken upstream can make us hold.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024

# (url, body, headers) of the request for one target.
Build = Callable[[Target], tuple[str, bytes, dict[str, str]]]


def default_http_client() -> httpx.AsyncClient:
    """One pool for every request of a pack; per-request timeouts come from the target's settings."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(300.0, connect=10.0),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30.0),
        follow_redirects=False,
        trust_env=False,
    )


def http_candidates(config: GatewayConfig, primary: Target) -> list[Target]:
    """The primary, other targets of its model, then its `providers.fallback`: HTTP ones only."""
    return [t for t in config.candidate_targets(primary) if t.effective_transport == "http"]


async def read_limited(resp: httpx.Response) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise refusal(502, "upstream_error", "upstream_response_too_large", "The upstream's answer is too large.")
        parts.append(chunk)
    return b"".join(parts)


async def read_json(resp: httpx.Response) -> tuple[bytes, Any]:
    """A whole upstream answer, as bytes and parsed; 502 when it is not JSON."""
    raw = await read_limited(resp)
    try:
        return raw, json.loads(raw)
    except ValueError:
        raise refusal(
            502, "upstream_error", "invalid_upstream_response", "The upstream's answer is not JSON."
        ) from None


@asynccontextmanager
async def upstream_response(
    client: httpx.AsyncClient,
    config: GatewayConfig,
    health: UpstreamHealth,
    candidates: Sequence[Target],
    build: Build,
    operation: str = CHAT,
) -> AsyncIterator[tuple[Target, httpx.Response]]:
    """The first candidate's successful (2xx/3xx) streamed response, closed on leaving; raises
    `HttpRefusal` with what the client should get when no candidate answered. `operation`: the
    GenAI operation it is (names the attempt's span when tracing is on)."""
    last: HttpRefusal | None = None
    for target in candidates:
        permit = health.acquire(target.id, trio.current_time())
        if permit is None:
            continue
        url, body, headers = build(target)
        settings = config.session_settings(target)
        timeout = httpx.Timeout(settings.idle_timeout_secs, connect=settings.connect_timeout_secs)
        # Traced: a span per attempt, and the provider's `traceparent` names it (kt_trio.telemetry).
        with upstream_call(f"{operation} {target.model_name}", _call_attributes(operation, target)) as call:
            if call.traceparent is not None:
                headers = {**headers, "traceparent": call.traceparent}
            req = client.build_request("POST", url, content=body, headers=headers, timeout=timeout)
            try:
                resp = await client.send(req, stream=True)
            except httpx.HTTPError as exc:
                health.record_failure(permit, trio.current_time(), f"upstream: {type(exc).__name__}")
                message = f"The upstream could not be reached ({type(exc).__name__})."
                last = refusal(502, "upstream_error", "upstream_unreachable", message)
                call.set(ERROR_TYPE, type(exc).__name__)
                continue
            except BaseException:
                health.abandon(permit)
                raise
            call.set("http.response.status_code", resp.status_code)
            try:
                if resp.status_code >= 400:
                    raw = await read_limited(resp)
                    answer = upstream_refusal(target.provider, resp.status_code, raw, resp.headers.get("retry-after"))
                    if resp.status_code >= 500 or resp.status_code == 429:
                        health.record_failure(permit, trio.current_time(), f"upstream: HTTP {resp.status_code}")
                        last = answer
                        call.set(ERROR_TYPE, str(resp.status_code))
                        continue
                    health.record_success(permit, trio.current_time())
                    raise answer
                health.record_success(permit, trio.current_time())
                yield target, resp
                return
            finally:
                with trio.CancelScope(shield=True):
                    await resp.aclose()
    if last is not None:
        raise last
    retry_after = health.retry_after([t.id for t in candidates], trio.current_time())
    raise refusal(
        503,
        "upstream_unavailable",
        "circuit_open",
        "Every upstream for this model is unavailable; retry later.",
        retry_after=str(retry_after),
    )


def _call_attributes(operation: str, target: Target) -> dict[str, str]:
    return {
        OPERATION_NAME: operation,
        PROVIDER_NAME: provider_name(target.provider),
        REQUEST_MODEL: target.model_name,
        "kt.target": target.id,
    }
