"""Shared state: what several gateway processes (and machines) must agree on.

`state.backend: embedded` (the default) keeps it in this process, as the gateway always has:
`EmbeddedState`. `state.backend: redis` shares it through Redis: `RedisState` (concurrent-session
leases, per-key message rates and daily tokens, circuit breakers, revoked keys, the event stream,
`kt_ek_` client secrets).
The gateway talks to either through the same few calls; `state_for` picks one from the config.
"""

from __future__ import annotations

from kt_trio.state.base import Refusal, SessionSlot, SharedState, StateUnavailable, state_for

__all__ = ["Refusal", "SessionSlot", "SharedState", "StateUnavailable", "state_for"]
