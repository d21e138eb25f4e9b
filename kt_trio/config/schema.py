"""The configuration schema: frozen attrs classes mirroring DESIGN.md "Where every key lives".

Every class here is plain data built once by `kt_trio.config.loader`; the rest of the gateway
reads it and never validates it again. Field names are the YAML keys exactly (the seeds' two
spellings `idle_timeout_seconds` / `idle_timeout_secs` are kept as the documentation has them).

Field metadata drives the loader's checks beyond types: `check` names a rule from
`kt_trio.config.validate` (`positive`, `non_negative`, `unit_interval`, `cidr`, `url`,
`url_part`), and `min` / `max` bound a number (inclusive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import attrs
from attrs import field, frozen

from kt_trio.config.routing import pick_target
from kt_trio.pricing import ModelPrice

ProviderName = Literal["openai", "azure-openai", "anthropic"]
Transport = Literal["websocket", "http"]
ApplyTo = Literal["input", "output", "both"]
OnError = Literal["block", "allow"]
RateLimitMode = Literal["reject", "delay"]
Durability = Literal["batch", "strict"]
StoreBackend = Literal["sqlite", "postgres"]
PiiPattern = Literal["email", "phone", "credit_card", "ssn", "iban", "ip_address", "name", "national_id"]
SafetyCategory = Literal["hate", "violence", "sexual", "self-harm", "harassment"]
WebSocketRoute = Literal["/v1/realtime", "/v1/responses"]

PII_PATTERNS: tuple[PiiPattern, ...] = (
    "email",
    "phone",
    "credit_card",
    "ssn",
    "iban",
    "ip_address",
    "name",
    "national_id",
)
SAFETY_CATEGORIES: tuple[SafetyCategory, ...] = ("hate", "violence", "sexual", "self-harm", "harassment")

# The public endpoints a target with no base_url uses (DESIGN.md, "Configuration").
OPENAI_HTTP_BASE = "https://api.openai.com/v1"
OPENAI_WS_BASE = "wss://api.openai.com"
ANTHROPIC_HTTP_BASE = "https://api.anthropic.com/v1"
# The Realtime api-version an azure-openai WebSocket target asks for when it names none: the one
# Azure's Realtime documentation uses for /openai/realtime with a deployment.
DEFAULT_AZURE_REALTIME_API_VERSION = "2025-04-01-preview"


# Upper (and a few lower) bounds on numbers (issue 13: what `validate` accepts, `serve` runs).
# A number past these is a typo or a unit mistake, and some would stall or exhaust the gateway:
# a 1 ms ping burns a core, a 1 TiB message limit lets one client take the memory, a flush
# interval of hours leaves records uncommitted. The validator also gives every number without a
# `max` of its own a generic ceiling (`kt_trio.config.validate.DEFAULT_MAX_NUMBER`).
MIB = 1024 * 1024
MAX_MESSAGE_BYTES = 256 * MIB
MAX_KEEPALIVE_SECS = 3600.0  # ping / pong: an hour between pings is already no keepalive
MIN_KEEPALIVE_SECS = 1.0  # below a second, pings cost more than the traffic they guard
MAX_SESSION_SECS = 7 * 86400.0  # idle timeout and session length: a week
MAX_CONNECT_SECS = 300.0
MAX_COUNT = 1_000_000  # connections, messages per minute, failures before the breaker opens
DAY_SECS = 86400.0


def _positive(default: Any = attrs.NOTHING, *, max: float | None = None, min: float | None = None) -> Any:
    metadata: dict[str, Any] = {"check": "positive"}
    if max is not None:
        metadata["max"] = max
    if min is not None:
        metadata["min"] = min
    return field(default=default, metadata=metadata)


def _message_size(default: int | None) -> Any:
    return _positive(default, max=MAX_MESSAGE_BYTES)


def _keepalive(default: float | None) -> Any:
    return _positive(default, min=MIN_KEEPALIVE_SECS, max=MAX_KEEPALIVE_SECS)


def _unit(default: Any = attrs.NOTHING) -> Any:
    return field(default=default, metadata={"check": "unit_interval"})


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


# --- providers --------------------------------------------------------------------------------


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


# --- policies ---------------------------------------------------------------------------------
# Each policy has the common settings action / apply_to / on_error plus its own. Defaults are
# written on the class, so an absent `policy.<name>` block is just `Cls()`.


@frozen(kw_only=True)
class PromptInjectionSettings:
    action: Literal["block", "flag", "close"] = "block"
    apply_to: ApplyTo = "input"
    on_error: OnError = "block"
    threshold: float = _unit(0.8)


@frozen(kw_only=True)
class PiiDetectorSettings:
    action: Literal["redact", "block", "flag", "close"] = "redact"
    apply_to: ApplyTo = "both"
    on_error: OnError = "block"
    detect_patterns: tuple[PiiPattern, ...] = PII_PATTERNS
    # Regions whose national phone formats are recognised (ISO 3166 codes, as phonenumbers has them).
    phone_regions: tuple[str, ...] = ("US",)


@frozen(kw_only=True)
class SafetyFilterSettings:
    action: Literal["block", "flag", "close"] = "block"
    apply_to: ApplyTo = "both"
    on_error: OnError = "block"
    categories: tuple[SafetyCategory, ...] = SAFETY_CATEGORIES
    threshold: float = _unit(0.5)


@frozen(kw_only=True)
class BotDetectorSettings:
    action: Literal["flag", "block", "close"] = "flag"
    apply_to: ApplyTo = "input"
    on_error: OnError = "block"
    threshold: float = _unit(0.8)
    # More than `burst_sessions` sessions from one key (or IP) within `burst_window_secs` is a signal.
    burst_sessions: int = _positive(10)
    burst_window_secs: float = _positive(10.0)


@frozen(kw_only=True)
class AuditLoggerSettings:
    """The audit log: a hash-chained append-only record of every decision."""

    action: Literal["log"] = "log"
    apply_to: ApplyTo = "both"
    on_error: OnError = "block"
    immutable: bool = True
    retention_days: int | None = _positive(None, max=36_525)  # None: keep forever; at most 100 years
    log_all_access: bool = False
    include_content: bool = False
    durability: Durability = "batch"
    flush_interval_ms: int = _positive(50, max=10_000)  # at most 10 s between commits


@frozen(kw_only=True)
class SessionBudgetSettings:
    action: Literal["block", "close"] = "block"
    apply_to: ApplyTo = "both"
    on_error: OnError = "block"
    max_total_tokens: int | None = _positive(None, max=10**15)  # None: no budget, usage is only tracked
    alert_thresholds: tuple[float, ...] = field(default=(0.5, 0.8, 1.0), metadata={"check": "positive", "max": 100.0})


@frozen(kw_only=True)
class ExternalGuardrailSettings:
    """`policy.external-guardrail` (DESIGN.md "Guardrail hook"): a service of your own behind HTTP
    judges whole texts; `headers` values may hold secrets (`${ENV}`), kept out of repr."""

    action: Literal["block", "flag", "close"] = "block"
    apply_to: ApplyTo = "both"
    on_error: OnError = "block"
    url: str = ""
    headers: Mapping[str, str] = field(factory=dict, repr=False)
    timeout_ms: int = _positive(800)
    max_concurrency: int = _positive(64)


PolicySettings = (
    PromptInjectionSettings
    | PiiDetectorSettings
    | SafetyFilterSettings
    | BotDetectorSettings
    | AuditLoggerSettings
    | SessionBudgetSettings
    | ExternalGuardrailSettings
)

# The known policies, in the order the default chain runs them.
POLICY_SETTINGS: Mapping[str, type[PolicySettings]] = {
    "prompt-injection": PromptInjectionSettings,
    "pii-detector": PiiDetectorSettings,
    "safety-filter": SafetyFilterSettings,
    "bot-detector": BotDetectorSettings,
    "audit-logger": AuditLoggerSettings,
    "session-budget": SessionBudgetSettings,
    "external-guardrail": ExternalGuardrailSettings,
}

# What demo mode (no --config) runs.
DEFAULT_CHAIN: tuple[str, ...] = ("prompt-injection", "pii-detector", "safety-filter", "audit-logger")


@frozen(kw_only=True)
class Policies:
    chain: tuple[str, ...] = ()


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
    providers: Providers = Providers()
    policies: Policies = Policies()
    policy: Mapping[str, PolicySettings] = field(factory=dict)
    features: Features = Features()
    state: State = State()
    store: Store = Store()
    observability: Observability = Observability()
    # USD per 1M tokens by model, over the built-in table (kt_trio.pricing).
    pricing: Mapping[str, ModelPrice] = field(factory=dict)
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
