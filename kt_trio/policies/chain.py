"""The policy chain: which policies judge which direction, built once per config.

`chain_of(config)` (or `build_chain(names, typed settings)`) turns `policies.chain` and the typed
`policy.<name>` blocks into a `PolicyChain`: the policies in order, split by direction. The
judging itself is the engine's (`kt_trio.policies.engine`); each front door adapts its shapes
to it: WebSocket sessions through `chain.new_session(...)` (`kt_trio.policies.session`), chat
and the other HTTP fronts through `judge_texts` and `StreamPart` over `input_text_policies` and
`output_policies`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kt_trio.config.schema import POLICY_SETTINGS, GatewayConfig, PolicySettings
from kt_trio.policies.base import Quiet
from kt_trio.policies.bot import BotDetector
from kt_trio.policies.engine import TextPolicy, pii_finding, policy_decision
from kt_trio.policies.output_state import MAX_OPEN_PARTS
from kt_trio.policies.pii import PiiDetector
from kt_trio.policies.prompt_injection import PromptInjection
from kt_trio.policies.safety import SafetyFilter
from kt_trio.policies.session import SessionPolicies
from kt_trio.policies.verdict import DROP, Verdict
from kt_trio.protocol.errors import Protocol

__all__ = [
    "DROP",
    "EXTERNAL_POLICIES",
    "MAX_OPEN_PARTS",
    "PolicyChain",
    "SessionPolicies",
    "Verdict",
    "build_chain",
    "chain_of",
    "pii_finding",
    "policy_decision",
]

# Policies other issues own; accepted in `policies.chain` and skipped here.
# Run outside the judging engine: the audit log, the token budget, and the external guardrail
# (I/O: an async step at the session and HTTP edges, `kt_trio.guardrail`).
EXTERNAL_POLICIES = frozenset({"audit-logger", "session-budget", "external-guardrail"})

_FACTORIES: dict[str, Any] = {
    "prompt-injection": PromptInjection,
    "pii-detector": PiiDetector,
    "safety-filter": SafetyFilter,
    "bot-detector": BotDetector,
}


def build_chain(chain: Sequence[str], settings: Mapping[str, PolicySettings] | None = None) -> PolicyChain:
    """A chain from `policies.chain` (names, in order) and the typed `policy.<name>` settings
    (`GatewayConfig.policy`); a policy without a block gets its schema defaults."""
    settings = settings or {}
    policies: list[Any] = []
    for name in chain:
        if name in EXTERNAL_POLICIES:
            continue
        factory = _FACTORIES.get(name)
        if factory is None:
            known = sorted(set(_FACTORIES) | EXTERNAL_POLICIES)
            raise ValueError(f"policies.chain: unknown policy {name!r} (known: {', '.join(known)})")
        typed = settings.get(name)
        if typed is None:
            typed = POLICY_SETTINGS[name]()
        elif not isinstance(typed, POLICY_SETTINGS[name]):
            raise TypeError(f"policy.{name}: settings must be {POLICY_SETTINGS[name].__name__}, not {typed!r}")
        policies.append(factory(typed))
    return PolicyChain(policies)


def chain_of(config: GatewayConfig) -> PolicyChain:
    """The chain a loaded config runs."""
    return build_chain(config.policies.chain, config.policy)


class PolicyChain:
    """Built once per config; immutable apart from the bot detector's cross-session burst counts."""

    def __init__(self, policies: Sequence[TextPolicy | BotDetector]) -> None:
        self.policies = tuple(policies)
        self.input_policies = tuple(p for p in policies if "input" in p.settings.directions)
        self.output_policies: tuple[TextPolicy, ...] = tuple(
            p for p in policies if "output" in p.settings.directions and not isinstance(p, BotDetector)
        )
        self.input_text_policies: tuple[TextPolicy, ...] = tuple(
            p for p in self.input_policies if not isinstance(p, BotDetector)
        )
        # Where every input text policy states its pre-filters (`quiet`), one check of their union
        # tells that none of them can find anything: the common benign message then costs one
        # check instead of one per policy.
        quiets: list[Quiet | None] = [getattr(p, "quiet", None) for p in self.input_text_policies]
        self.input_quiet: Quiet | None = None
        if quiets and all(q is not None for q in quiets):
            self.input_quiet = Quiet.union([q for q in quiets if q is not None])
        self.bot: BotDetector | None = next((p for p in self.input_policies if isinstance(p, BotDetector)), None)

    @property
    def is_empty(self) -> bool:
        return not self.input_policies and not self.output_policies

    def new_session(
        self,
        *,
        session_id: str,
        user_agent: str | None,
        client_ip: str,
        key_id: str | None = None,
        protocol: Protocol = "realtime",
    ) -> SessionPolicies:
        return SessionPolicies(
            self, session_id=session_id, user_agent=user_agent, client_ip=client_ip, key_id=key_id, protocol=protocol
        )
