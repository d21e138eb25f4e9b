"""What every part of the configuration schema shares: the value types, number bounds and field
helpers.

The `Literal` types are the values a key accepts; the bounds are what `validate` accepts and
`serve` runs; the field helpers put the loader's checks in a field's metadata (`check` names a
rule of `kt_trio.config.validate`, `min` / `max` bound a number, inclusive).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
from attrs import field

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

# Upper (and a few lower) bounds on numbers (issue 13: what `validate` accepts, `serve` runs).
# A number past these is a typo or a unit mistake, and some would stall or exhaust the gateway:
# a 1 ms ping burns a core, a 1 TiB message limit lets one client take the memory, a flush
# interval of hours leaves records uncommitted. The validator also gives every number without a
# `max` of its own a generic ceiling (`kt_trio.config.value_checks.DEFAULT_MAX_NUMBER`).
MIB = 1024 * 1024
MAX_MESSAGE_BYTES = 256 * MIB
MAX_KEEPALIVE_SECS = 3600.0  # ping / pong: an hour between pings is already no keepalive
MIN_KEEPALIVE_SECS = 1.0  # below a second, pings cost more than the traffic they guard
MAX_SESSION_SECS = 7 * 86400.0  # idle timeout and session length: a week
MAX_CONNECT_SECS = 300.0
MAX_COUNT = 1_000_000  # connections, messages per minute, failures before the breaker opens
DAY_SECS = 86400.0


def positive(default: Any = attrs.NOTHING, *, max: float | None = None, min: float | None = None) -> Any:
    metadata: dict[str, Any] = {"check": "positive"}
    if max is not None:
        metadata["max"] = max
    if min is not None:
        metadata["min"] = min
    return field(default=default, metadata=metadata)


def message_size(default: int | None) -> Any:
    return positive(default, max=MAX_MESSAGE_BYTES)


def keepalive(default: float | None) -> Any:
    return positive(default, min=MIN_KEEPALIVE_SECS, max=MAX_KEEPALIVE_SECS)


def unit(default: Any = attrs.NOTHING) -> Any:
    return field(default=default, metadata={"check": "unit_interval"})
