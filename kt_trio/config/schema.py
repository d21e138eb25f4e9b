"""The configuration schema: frozen attrs classes mirroring DESIGN.md "Where every key lives".

Every class here is plain data built once by `kt_trio.config.loader`; the rest of the gateway
reads it and never validates it again. Field names are the YAML keys exactly (the seeds' two
spellings `idle_timeout_seconds` / `idle_timeout_secs` are kept as the documentation has them).

Field metadata drives the loader's checks beyond types: `check` names a rule from
`kt_trio.config.validate` (`positive`, `non_negative`, `unit_interval`, `cidr`, `url`,
`url_part`), and `min` / `max` bound a number (inclusive).

The sections live in modules of their own: `schema_fields` (value types, number bounds, field
helpers), `schema_providers` (`providers`: targets, routing, rate limits, breaker) and
`schema_policies` (`policy.<name>`, `policies`); this module holds the root (`GatewayConfig`),
`pack`, `gateway`, `features`, `state`, `store` and `observability`, and re-exports the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import field, frozen

from kt_trio.config.routing import pick_target
from kt_trio.config.schema_fields import (
    DAY_SECS,
    MAX_CONNECT_SECS,
    MAX_COUNT,
    MAX_KEEPALIVE_SECS,
    MAX_MESSAGE_BYTES,
    MAX_SESSION_SECS,
    MIB,
    MIN_KEEPALIVE_SECS,
    PII_PATTERNS,
    SAFETY_CATEGORIES,
    ApplyTo,
    Durability,
    OnError,
    PiiPattern,
    ProviderName,
    RateLimitMode,
    SafetyCategory,
    StoreBackend,
    Transport,
    WebSocketRoute,
)
from kt_trio.config.schema_fields import keepalive as _keepalive
from kt_trio.config.schema_fields import message_size as _message_size
from kt_trio.config.schema_fields import positive as _positive
from kt_trio.config.schema_policies import (
    DEFAULT_CHAIN,
    POLICY_SETTINGS,
    AuditLoggerSettings,
    BotDetectorSettings,
    ExternalGuardrailSettings,
    PiiDetectorSettings,
    Policies,
    PolicySettings,
    PromptInjectionSettings,
    SafetyFilterSettings,
    SessionBudgetSettings,
)
from kt_trio.config.schema_providers import (
    ANTHROPIC_HTTP_BASE,
    DEFAULT_AZURE_REALTIME_API_VERSION,
    OPENAI_HTTP_BASE,
    OPENAI_WS_BASE,
    CircuitBreaker,
    PerConnectionRateLimit,
    PerIpRateLimit,
    Providers,
    RateLimit,
    Routing,
    SecretKeyRef,
    SessionSettings,
    Target,
)
from kt_trio.pricing import ModelPrice

# Everything the schema modules define is importable from here, as before the split.
__all__ = [
    "ANTHROPIC_HTTP_BASE",
    "DAY_SECS",
    "DEFAULT_AZURE_REALTIME_API_VERSION",
    "DEFAULT_CHAIN",
    "DEFAULT_PASSTHROUGH_PATHS",
    "MAX_CONNECT_SECS",
    "MAX_COUNT",
    "MAX_KEEPALIVE_SECS",
    "MAX_MESSAGE_BYTES",
    "MAX_SESSION_SECS",
    "MIB",
    "MIN_KEEPALIVE_SECS",
    "OPENAI_HTTP_BASE",
    "OPENAI_WS_BASE",
    "PII_PATTERNS",
    "POLICY_SETTINGS",
    "SAFETY_CATEGORIES",
    "ApplyTo",
    "AuditLoggerSettings",
    "BotDetectorSettings",
    "CircuitBreaker",
    "ConfigOrigin",
    "Durability",
    "EventStream",
    "ExternalGuardrailSettings",
    "Features",
    "Gateway",
    "GatewayAuth",
    "GatewayConfig",
    "GatewayHttp",
    "GatewayTls",
    "GatewayWebSocket",
    "Observability",
    "OnError",
    "OnUnavailable",
    "Pack",
    "PerConnectionRateLimit",
    "PerIpRateLimit",
    "PiiDetectorSettings",
    "PiiPattern",
    "Policies",
    "PolicySettings",
    "PromptInjectionSettings",
    "ProviderName",
    "Providers",
    "RateLimit",
    "RateLimitMode",
    "Routing",
    "SafetyCategory",
    "SafetyFilterSettings",
    "SecretKeyRef",
    "SessionBudgetSettings",
    "SessionSettings",
    "State",
    "StateBackend",
    "Store",
    "StoreBackend",
    "Target",
    "Transport",
    "WebSocketRoute",
]
# --- pack and gateway -------------------------------------------------------------------------


@frozen(kw_only=True)
class Pack:
    name: str = "kt_trio"
    version: str = "0.0.0"
    enabled: bool = True
    description: str | None = None


@frozen(kw_only=True)
class GatewayAuth:
    require_keys: bool = False


@frozen(kw_only=True)
class GatewayWebSocket:
    """Session settings for every target; a target may override each one (see `Target`)."""

    enabled: bool = True
    max_message_size_bytes: int = _message_size(1_048_576)  # client -> provider
    max_upstream_message_size_bytes: int = _message_size(16_777_216)  # provider -> client
    idle_timeout_seconds: float = _positive(300.0, max=MAX_SESSION_SECS)
    ping_interval_secs: float = _keepalive(30.0)
    pong_timeout_secs: float = _keepalive(60.0)
    max_session_secs: float = _positive(3600.0, max=MAX_SESSION_SECS)
    connect_timeout_secs: float = _positive(10.0, max=MAX_CONNECT_SECS)


# DESIGN.md "no route around it": the `/v1/*` prefixes passed through unparsed by default.
DEFAULT_PASSTHROUGH_PATHS = ("/v1/files", "/v1/uploads", "/v1/batches")


@frozen(kw_only=True)
class GatewayHttp:
    """HTTP front doors. `passthrough_paths`: path prefixes passed through unparsed (setting it
    replaces the default); any other `/v1/*` path that is not a governed route is 404."""

    passthrough_paths: tuple[str, ...] = DEFAULT_PASSTHROUGH_PATHS


@frozen(kw_only=True)
class GatewayTls:
    """TLS on the listener (`serve --certfile/--keyfile` override these): `wss://` and `https://`
    on the one port. `client_ca`: a CA bundle; when set, every client must present a certificate
    it signed. Paths are read at start, relative to the working directory."""

    certfile: str | None = None
    keyfile: str | None = None
    client_ca: str | None = None


@frozen(kw_only=True)
class Gateway:
    state_dir: str = "./.kt_trio"
    shutdown_timeout_secs: float = _positive(10.0, max=3600.0)
    trusted_proxies: tuple[str, ...] = field(default=(), metadata={"check": "cidr"})
    auth: GatewayAuth = GatewayAuth()
    websocket: GatewayWebSocket = GatewayWebSocket()
    tls: GatewayTls = GatewayTls()
    # `serve --workers N`: processes sharing the port (SO_REUSEPORT) under one supervisor.
    workers: int = _positive(1)
    http: GatewayHttp = GatewayHttp()


# --- features ---------------------------------------------------------------------------------


@frozen(kw_only=True)
class EventStream:
    """`features.websocket`: the /ws/events live stream."""

    enabled: bool = True
    require_auth: bool = False
    ping_interval_secs: float = _keepalive(30.0)
    pong_timeout_secs: float = _keepalive(60.0)
    max_connections: int = field(default=1000, metadata={"check": "non_negative", "max": MAX_COUNT})  # 0: unlimited
    # Subscribers with no credentials (auth off): capped on their own so they cannot fill
    # `max_connections` and lock out the operator's keyed or token subscriber. 0: no own cap.
    max_anonymous_connections: int = field(default=100, metadata={"check": "non_negative", "max": MAX_COUNT})
    # Per subscriber: a queue of events, so its bound is memory (65536 x ~1 KiB events).
    channel_capacity: int = _positive(1024, max=65_536)
    tokens: tuple[str, ...] = field(default=(), repr=False)  # secrets: kept out of repr
    allowed_origins: tuple[str, ...] = ()
    # An `audit` event per relayed message (never content; audio coalesced to one a second).
    message_events: bool = False


@frozen(kw_only=True)
class Features:
    websocket: EventStream = EventStream()


# --- shared state -----------------------------------------------------------------------------

StateBackend = Literal["embedded", "redis"]
OnUnavailable = Literal["fail_closed", "fail_open"]


@frozen(kw_only=True)
class State:
    """`state`: where limits, leases, breakers and the event fan-out live (DESIGN.md "Past one
    process and one machine"). `redis_url` may carry a password (or `${ENV}`): kept out of repr."""

    backend: StateBackend = "embedded"
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    on_unavailable: OnUnavailable = "fail_closed"
    lease_ttl_secs: float = _positive(30.0)


# --- stores -----------------------------------------------------------------------------------


@frozen(kw_only=True)
class Store:
    """`store.*`: where gateway keys and the audit log live (DESIGN.md "Past one process").

    `sqlite`: `keys.db` and `audit.db` in `gateway.state_dir`. `postgres`: both in the database
    `postgres_dsn` names (a libpq URI or key=value string; `${ENV}` expands, so the password can
    stay out of the file). `instance_id` names this gateway's audit chain; unset, it is
    `<hostname>:<port>`, which stays the same across restarts of one instance."""

    backend: StoreBackend = "sqlite"
    postgres_dsn: str | None = field(default=None, repr=False)  # holds a password: kept out of repr
    instance_id: str | None = None


@frozen(kw_only=True)
class Team:
    """`teams.<team>`: a budget the gateway keys of one team share (`keys create --team`)."""

    daily_usd: float | None = _positive(None)  # USD per UTC day at the price table (kt_trio.pricing)


# --- observability ----------------------------------------------------------------------------


@frozen(kw_only=True)
class Observability:
    """`observability.*` (DESIGN.md "Observability and cost"): `otlp_endpoint` is an OTLP/HTTP
    collector's base URL (spans go to `<base>/v1/traces`); unset, the standard
    `OTEL_EXPORTER_OTLP_*` variables decide, and with neither tracing is off (`kt_trio.telemetry`)."""

    otlp_endpoint: str | None = None


# --- root -------------------------------------------------------------------------------------


@frozen(kw_only=True)
class ConfigOrigin:
    """Where a loaded config came from, so later errors (an unset secret) can point at a line."""

    file: str
    # dotted path -> 1-based (line, col) of the key, or of the item in a sequence.
    positions: Mapping[str, tuple[int, int]] = field(factory=dict, repr=False)

    def position(self, path: str) -> tuple[int, int]:
        """The position of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.positions:
                return self.positions[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return (1, 1)


@frozen(kw_only=True)
class GatewayConfig:
    pack: Pack = Pack()
    gateway: Gateway = Gateway()
    providers: Providers = Providers()  # noqa: RUF009  (frozen: one shared default is safe)
    policies: Policies = Policies()  # noqa: RUF009  (frozen, as above)
    policy: Mapping[str, PolicySettings] = field(factory=dict)
    features: Features = Features()
    state: State = State()
    store: Store = Store()
    observability: Observability = Observability()
    # USD per 1M tokens by model, over the built-in table (kt_trio.pricing).
    pricing: Mapping[str, ModelPrice] = field(factory=dict)
    teams: Mapping[str, Team] = field(factory=dict)  # read from the default pack (gateway-wide)
    # Not a config key: set by the loader, ignored by equality.
    origin: ConfigOrigin | None = field(default=None, eq=False, repr=False)

    def policy_settings(self, name: str) -> PolicySettings:
        """The settings of policy `name`: its `policy.<name>` block, else that policy's defaults."""
        settings = self.policy.get(name)
        return settings if settings is not None else POLICY_SETTINGS[name]()

    def session_settings(self, target: Target) -> SessionSettings:
        """Merge `target`'s overrides over `gateway.websocket`."""
        ws = self.gateway.websocket

        def pick(override: float | None, default: float) -> float:
            return default if override is None else override

        return SessionSettings(
            ping_interval_secs=float(pick(target.ping_interval_secs, ws.ping_interval_secs)),
            pong_timeout_secs=float(pick(target.pong_timeout_secs, ws.pong_timeout_secs)),
            max_message_size_bytes=int(pick(target.max_message_size_bytes, ws.max_message_size_bytes)),
            max_upstream_message_size_bytes=int(
                pick(target.max_upstream_message_size_bytes, ws.max_upstream_message_size_bytes)
            ),
            idle_timeout_secs=float(pick(target.idle_timeout_secs, ws.idle_timeout_seconds)),
            max_session_secs=float(pick(target.max_session_secs, ws.max_session_secs)),
            connect_timeout_secs=float(pick(target.connect_timeout_secs, ws.connect_timeout_secs)),
        )

    @property
    def websocket_targets(self) -> tuple[Target, ...]:
        return tuple(t for t in self.providers.targets if t.serves_websocket)

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.providers.targets if t.id == target_id), None)

    def find_websocket_target(self, model: str | None, *, deployment: str | None = None) -> Target | None:
        """DESIGN.md routing (`kt_trio.config.routing`) among the targets that serve WebSocket."""
        return pick_target(
            self.websocket_targets, model, deployment=deployment, by_family=self.providers.routing.by_family
        )

    def candidate_targets(self, primary: Target) -> tuple[Target, ...]:
        """The targets to try for a session routed to `primary`, in order: `primary`, other
        targets of the same model and transport kind, then `providers.fallback[primary.id]`."""
        same_kind = self.websocket_targets if primary.serves_websocket else self.providers.targets
        # A target without a model has no "same model" peers: it is reached by its id alone.
        peers = () if primary.model is None else (t for t in same_kind if t.model == primary.model)
        ordered = [primary, *(t for t in peers if t is not primary)]
        for target_id in self.providers.fallback.get(primary.id, ()):
            target = self.target(target_id)
            if target is not None and target not in ordered:
                ordered.append(target)
        return tuple(ordered)
