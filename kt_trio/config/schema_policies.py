"""The `policy.<name>` settings of each policy, and `policies.chain`.

Each policy has the common settings action / apply_to / on_error plus its own. Defaults are
written on the class, so an absent `policy.<name>` block is just `Cls()`; each policy takes its
typed settings object from here (no defaults of its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import field, frozen

from kt_trio.config.schema_fields import (
    PII_PATTERNS,
    SAFETY_CATEGORIES,
    ApplyTo,
    Durability,
    OnError,
    PiiPattern,
    SafetyCategory,
)
from kt_trio.config.schema_fields import positive as _positive
from kt_trio.config.schema_fields import unit as _unit


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
