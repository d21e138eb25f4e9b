"""Which upstream a new session gets: the routed target, then its fallbacks, past open breakers.

The admission layer owns upstream health (DESIGN.md "Shape"): sessions ask it. For each
candidate (the routed target, targets serving the same model, then `providers.fallback`), a
breaker permit is taken just before the dial and the outcome reported on it. Only health
failures move a breaker and lead to the next candidate; a provider that answers 401 or 403 is
healthy, and its answer is the client's.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import trio

from kt_trio.config.schema import GatewayConfig, Target
from kt_trio.governance.breaker import Permit, UpstreamHealth
from kt_trio.session.upstream import DialError, Upstream, dial
from kt_trio.session.upstream_headers import upstream_headers, upstream_subprotocols
from kt_trio.telemetry.context import upstream_call, with_traceparent
from kt_trio.telemetry.genai import PROVIDER_NAME, provider_name


class NoHealthyUpstream(Exception):
    """Every candidate's breaker is open: 503 with `Retry-After`."""

    def __init__(self, retry_after: int, targets: Sequence[str]) -> None:
        super().__init__(f"circuit open for every candidate target ({', '.join(targets)})")
        self.retry_after = retry_after


def is_health_failure(exc: DialError) -> bool:
    """Issue #4's list: refused, TLS failure, timeout, or a handshake status >= 500 or 429."""
    status = exc.upstream_status
    if status is None:
        return True
    return status >= 500 or status == 429


async def dial_with_fallback(
    config: GatewayConfig,
    health: UpstreamHealth,
    primary: Target,
    route: str,
    query: str,
    client_headers: Sequence[tuple[bytes, bytes]],
    offered_subprotocols: Sequence[str],
    secrets: Mapping[str, str],
    ssl_context: ssl.SSLContext | None,
) -> tuple[Target, Upstream, Permit | None]:
    """Dials the first healthy candidate; returns it with the breaker permit still to settle.

    A half-open target's successful trial closes its breaker here, at once. Otherwise the
    success is the caller's to report when the session ends, because a provider that accepts a
    session and drops it within seconds has failed, and a success recorded now would reset the
    count of consecutive failures that should open the breaker.
    """
    candidates = config.candidate_targets(primary)
    last_error: DialError | None = None
    for target in candidates:
        permit = await health.acquire_shared(target.id, trio.current_time())
        if permit is None:
            continue
        settings = config.session_settings(target)
        base = target.websocket_url(route)  # type: ignore[arg-type]
        url = base + (("&" if "?" in base else "?") + query if query else "")
        try:
            # Traced: a span per dial, and the provider's `traceparent` names it (kt_trio.telemetry).
            with upstream_call(f"connect {target.id}", _dial_attributes(target, url)) as call:
                headers = upstream_headers(client_headers, provider=target.provider, secret=secrets.get(target.id))
                upstream = await dial(
                    url,
                    with_traceparent(headers, call.traceparent),
                    upstream_subprotocols(offered_subprotocols),
                    connect_timeout=settings.connect_timeout_secs,
                    max_message_size=settings.max_upstream_message_size_bytes,
                    ssl_context=ssl_context,
                )
        except DialError as exc:
            if not is_health_failure(exc):
                await health.record_success_shared(permit, trio.current_time())
                raise
            await health.record_failure_shared(permit, trio.current_time(), exc.code)
            last_error = exc
            continue
        except BaseException:
            with trio.CancelScope(shield=True):
                await health.abandon_shared(permit)
            raise
        if permit.trial:
            await health.record_success_shared(permit, trio.current_time())
            return target, upstream, None
        return target, upstream, permit
    if last_error is not None:
        raise last_error
    ids = [t.id for t in candidates]
    raise NoHealthyUpstream(health.retry_after(ids, trio.current_time()), ids)


def _dial_attributes(target: Target, url: str) -> dict[str, str | int]:
    parts = urlsplit(url)
    return {
        "kt.target": target.id,
        PROVIDER_NAME: provider_name(target.provider),
        "server.address": parts.hostname or "",
        "server.port": parts.port or (443 if parts.scheme == "wss" else 80),
    }
