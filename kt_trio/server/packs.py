"""A policy pack as the gateway runs it: its config, secrets, chain, upstream health and chat app.

Which pack serves a client is decided once, after its key is checked (`Gateway.pack_for`): the
key's pack, or the default pack (the first) for a key bound to none and for anonymous clients.
Everything under `providers` and `policies` is the pack's own, so each pack has its own breakers
(a target failing for one pack's credentials says nothing about another's) and its own chat app
(its own `http` targets and connection pool).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attrs import define

from kt_trio.chat.app import ChatApp
from kt_trio.config.schema import ExternalGuardrailSettings, GatewayConfig, SessionBudgetSettings
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.governance.budget import SessionBudget
from kt_trio.guardrail.client import Guardrail
from kt_trio.keys import KeyInfo
from kt_trio.policies.chain import PolicyChain, chain_of
from kt_trio.records import Record

AUDIT_LOGGER = "audit-logger"
SESSION_BUDGET = "session-budget"
GUARDRAIL = "external-guardrail"


@define
class PackRuntime:
    config: GatewayConfig
    secrets: Mapping[str, str]
    chain: PolicyChain
    health: UpstreamHealth
    chat: ChatApp
    guardrail: Guardrail | None = None  # `external-guardrail` in the chain: one pool per pack

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        secrets: Mapping[str, str],
        report: Callable[[str | None, Record], None],
        *,
        health: UpstreamHealth | None = None,
        guardrail: Guardrail | None = None,
        **chat_hooks: Any,
    ) -> PackRuntime:
        """`chat_hooks`: the gateway's `audit`, `key_limiter` and `key_tokens` for `ChatApp`; the
        audit hook is dropped for a pack whose chain has no `audit-logger`, as for its sessions.
        `health` and `guardrail`: a config reload's surviving breakers and guardrail pool
        (`kt_trio.server.reload`); new ones otherwise."""
        breaker = config.providers.circuit_breaker
        if health is None:
            health = UpstreamHealth(
                breaker.failure_threshold,
                breaker.recovery_timeout_secs,
                on_transition=lambda transition: report(None, transition),
            )
        chain = chain_of(config)
        if AUDIT_LOGGER not in config.policies.chain:
            chat_hooks.pop("audit", None)
        if GUARDRAIL in config.policies.chain and guardrail is None:
            settings = config.policy_settings(GUARDRAIL)
            assert isinstance(settings, ExternalGuardrailSettings)
            guardrail = Guardrail(settings)
        chat = ChatApp(
            config, secrets=secrets, health=health, report=report, chain=chain, guardrail=guardrail, **chat_hooks
        )
        return cls(config=config, secrets=secrets, chain=chain, health=health, chat=chat, guardrail=guardrail)

    @property
    def name(self) -> str:
        return self.config.pack.name

    @property
    def audited(self) -> bool:
        """Sessions of this pack write to the audit log only when its chain names the logger."""
        return AUDIT_LOGGER in self.config.policies.chain

    def session_budget(self) -> SessionBudget | None:
        """A new session's token budget, when the pack sets `session-budget.max_total_tokens`."""
        settings = self.config.policy_settings(SESSION_BUDGET)
        assert isinstance(settings, SessionBudgetSettings)
        named = SESSION_BUDGET in self.config.policies.chain or SESSION_BUDGET in self.config.policy
        if not (named and settings.max_total_tokens):
            return None
        return SessionBudget(settings.max_total_tokens, settings.alert_thresholds, settings.action)


def unknown_pack_message(key_info: KeyInfo) -> str:
    return f"gateway key {key_info.name!r} is bound to pack {key_info.pack!r}, which this gateway does not serve"
