"""The `providers` section of the configuration schema: targets, routing, rate limits, breaker.

A `Target` knows its provider's public endpoints (when it names no `base_url`) and the URL it
dials; `SessionSettings` is a target's effective session settings (its overrides over
`gateway.websocket`, merged by `GatewayConfig.session_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from attrs import field, frozen

from kt_trio.config.schema_fields import (
    DAY_SECS,
    MAX_CONNECT_SECS,
    MAX_COUNT,
    MAX_SESSION_SECS,
    ProviderName,
    RateLimitMode,
    Transport,
    WebSocketRoute,
)
from kt_trio.config.schema_fields import keepalive as _keepalive
from kt_trio.config.schema_fields import message_size as _message_size
from kt_trio.config.schema_fields import positive as _positive

# The public endpoints a target with no base_url uses (DESIGN.md, "Configuration").
OPENAI_HTTP_BASE = "https://api.openai.com/v1"
OPENAI_WS_BASE = "wss://api.openai.com"
ANTHROPIC_HTTP_BASE = "https://api.anthropic.com/v1"
# The Realtime api-version an azure-openai WebSocket target asks for when it names none: the one
# Azure's Realtime documentation uses for /openai/realtime with a deployment.
DEFAULT_AZURE_REALTIME_API_VERSION = "2025-04-01-preview"


@frozen(kw_only=True)
class SecretKeyRef:
    env: str


@frozen(kw_only=True)
class SessionSettings:
    """The effective session settings for one target: its overrides over `gateway.websocket`."""

    ping_interval_secs: float
    pong_timeout_secs: float
    max_message_size_bytes: int
    max_upstream_message_size_bytes: int
    idle_timeout_secs: float
    max_session_secs: float
    connect_timeout_secs: float


@frozen(kw_only=True)
class Target:
    id: str
    provider: ProviderName
    # None: a target routed to by its id (or as the first WebSocket target), as the documentation's
    # health-monitoring example writes it; the client's model then goes upstream as sent.
    model: str | None = None
    base_url: str | None = field(default=None, metadata={"check": "url"})
    transport: Transport | None = None
    secret_key_ref: SecretKeyRef | None = None
    # Both go into the upstream URL: printable ASCII only (checked by the validator).
    api_version: str | None = field(default=None, metadata={"check": "url_part"})
    deployment: str | None = field(default=None, metadata={"check": "url_part"})
    # Per-target overrides of gateway.websocket; None means "use the gateway's value".
    ping_interval_secs: float | None = _keepalive(None)
    pong_timeout_secs: float | None = _keepalive(None)
    max_message_size_bytes: int | None = _message_size(None)
    max_upstream_message_size_bytes: int | None = _message_size(None)
    idle_timeout_secs: float | None = _positive(None, max=MAX_SESSION_SECS)
    max_session_secs: float | None = _positive(None, max=MAX_SESSION_SECS)
    connect_timeout_secs: float | None = _positive(None, max=MAX_CONNECT_SECS)

    @property
    def model_name(self) -> str:
        """The model records and metrics name for this target: its `model`, else its id (the
        name clients route to it by)."""
        return self.model if self.model is not None else self.id

    @property
    def effective_transport(self) -> Transport:
        """`transport` as written, else websocket for a ws:// or wss:// base_url, else http."""
        if self.transport is not None:
            return self.transport
        if self.base_url is not None and self.base_url.startswith(("ws://", "wss://")):
            return "websocket"
        return "http"

    @property
    def serves_websocket(self) -> bool:
        """True when a WebSocket route may pick this target.

        An openai target with no base_url (and no explicit transport) uses the provider's
        public endpoints, so it serves both kinds of route (DESIGN.md, "Configuration").
        """
        if self.effective_transport == "websocket":
            return True
        return self.base_url is None and self.transport is None and self.provider == "openai"

    def websocket_url(self, route: WebSocketRoute) -> str:
        """The upstream URL (without the client's query string) for a WebSocket `route`.

        DESIGN.md: the base_url as written when set (a target meant for /v1/responses names
        that URL); else the provider's public URL for the route the client used.
        """
        if self.base_url is not None:
            if self.provider == "azure-openai" and self.deployment:
                return _azure_realtime_url(self.base_url, self.deployment, self.api_version)
            return self.base_url
        if self.provider == "openai":
            return OPENAI_WS_BASE + route
        raise ValueError(f"target {self.id!r} ({self.provider}) has no public WebSocket endpoint")

    @property
    def http_base_url(self) -> str:
        """The base URL for HTTP routes (chat completions): base_url, else the public one."""
        if self.base_url is not None:
            return self.base_url
        if self.provider == "openai":
            return OPENAI_HTTP_BASE
        if self.provider == "anthropic":
            return ANTHROPIC_HTTP_BASE
        # The loader rejects azure-openai without base_url, so this is a programming error.
        raise ValueError(f"target {self.id!r} ({self.provider}) needs a base_url")


def _azure_realtime_url(base_url: str, deployment: str, api_version: str | None) -> str:
    """An azure-openai target whose base_url is its resource URL dials the resource's Realtime
    endpoint (DESIGN.md): `wss://<resource>/openai/realtime?api-version=...&deployment=...`.
    A base_url that already names a path (a whole Realtime URL, as first builds required) is
    used as written."""
    split = urlsplit(base_url)
    if split.path.strip("/") or split.query:
        return base_url
    scheme = {"https": "wss", "http": "ws"}.get(split.scheme, split.scheme)
    query = urlencode({"api-version": api_version or DEFAULT_AZURE_REALTIME_API_VERSION, "deployment": deployment})
    return f"{scheme}://{split.netloc}/openai/realtime?{query}"


@frozen(kw_only=True)
class PerConnectionRateLimit:
    messages_per_minute: int | None = _positive(None, max=MAX_COUNT)  # None: unlimited
    mode: RateLimitMode = "reject"
    exclude_types: tuple[str, ...] = ()


@frozen(kw_only=True)
class PerIpRateLimit:
    connections: int | None = _positive(None, max=MAX_COUNT)  # None: unlimited


@frozen(kw_only=True)
class RateLimit:
    per_connection: PerConnectionRateLimit = PerConnectionRateLimit()
    per_ip: PerIpRateLimit = PerIpRateLimit()


@frozen(kw_only=True)
class CircuitBreaker:
    failure_threshold: int = _positive(5, max=MAX_COUNT)
    recovery_timeout_secs: float = _positive(30.0, max=DAY_SECS)


@frozen(kw_only=True)
class Routing:
    """`providers.routing`: a model no target names goes to a target of its family's provider."""

    by_family: bool = True


@frozen(kw_only=True)
class Providers:
    targets: tuple[Target, ...] = ()
    routing: Routing = Routing()
    rate_limit: RateLimit = RateLimit()
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    # target id -> target ids tried in order after targets of the same model.
    fallback: Mapping[str, tuple[str, ...]] = field(factory=dict)
