"""Which settings a reload cannot change, and the new config with their old values kept.

A reload swaps in what new sessions and requests read when they start (targets, chains, policy
settings, limits, pricing, session settings). What was built once when the process started (the
listening socket and its TLS context, the worker processes, the shared-state and key/audit
stores, the event hub's buffers) keeps running as it is: changing it needs a restart, so the
new config keeps the old value there and the reload names the setting in a warning.

Pure: no I/O, no trio. Paths are dotted attribute paths into `GatewayConfig`; a path the schema
does not have (yet) is skipped, so a section added to the schema later is compared once listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from kt_trio.config.schema import GatewayConfig

# Read once when the gateway starts; each stays at its old value until a restart.
RESTART_SETTINGS: tuple[str, ...] = (
    "gateway.tls",  # the listener's TLS context is built before the first accept
    "gateway.workers",  # the supervisor's process count
    "gateway.state_dir",  # keys.db and audit.db are opened there at start
    "state",  # the shared-state backend (Redis link, leases)
    "store",  # the key and audit store backend
    "features.websocket.channel_capacity",  # the event hub's per-subscriber buffers
    "observability",  # the tracer provider and its exporter
)
# The audit log opens at start with the settings of the first pack whose chain names it.
AUDIT_LOGGER = "audit-logger"
AUDIT_STORE_SETTINGS = ("durability", "flush_interval_ms", "retention_days", "immutable")

_MISSING = object()


def value_at(config: Any, path: str) -> Any:
    """The value at a dotted path, or `_MISSING` when the schema has no such field."""
    node = config
    for part in path.split("."):
        node = getattr(node, part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def with_value(config: Any, path: str, value: Any) -> Any:
    """`config` with the value at a dotted path replaced (frozen attrs classes, rebuilt upwards)."""
    head, _, rest = path.partition(".")
    if not rest:
        return attrs.evolve(config, **{head: value})
    return attrs.evolve(config, **{head: with_value(getattr(config, head), rest, value)})


def restart_required(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """The restart-only settings the new default pack sets differently from the running one."""
    changed = []
    for path in RESTART_SETTINGS:
        before, after = value_at(old, path), value_at(new, path)
        if before is not _MISSING and before != after:
            changed.append(path)
    return changed


def keep_restart_settings(old: GatewayConfig, new: GatewayConfig, changed: Iterable[str]) -> GatewayConfig:
    """`new` with the old values of the settings that need a restart."""
    for path in changed:
        new = with_value(new, path, value_at(old, path))
    return new


def audit_restart_required(
    old_packs: Iterable[GatewayConfig], new_packs: Iterable[GatewayConfig], audit_open: bool
) -> list[str]:
    """The audit log's own settings: it is opened at start (or not at all), so a chain that
    newly names `audit-logger` while no log is open, or changed store settings of the log that
    is open, take effect at the next restart. The message says which."""
    old_audited = next((c for c in old_packs if AUDIT_LOGGER in c.policies.chain), None)
    new_audited = next((c for c in new_packs if AUDIT_LOGGER in c.policies.chain), None)
    if new_audited is None:
        return []
    if not audit_open:
        return [f"policies.chain: {AUDIT_LOGGER} (the audit log opens at start; until a restart nothing is audited)"]
    if old_audited is None:
        return []
    before, after = old_audited.policy_settings(AUDIT_LOGGER), new_audited.policy_settings(AUDIT_LOGGER)
    return [
        f"policy.{AUDIT_LOGGER}.{name}"
        for name in AUDIT_STORE_SETTINGS
        if getattr(before, name, None) != getattr(after, name, None)
    ]
