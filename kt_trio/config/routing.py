"""Which target serves a requested model (pure): DESIGN.md "Routing" and "What Keeptrusts users
type and call".

The order is the same on every door, WebSocket and HTTP alike:
1. an Azure-style `deployment` (from `/openai/deployments/{d}/...` or `?deployment=`) names a
   target's `deployment`, else its `model`, else its `id`;
2. the requested model names a target's `model`, else its `id`;
3. with `providers.routing.by_family` on, a model no target names goes to the first target whose
   provider serves its family (`gpt-*` ... to openai, then azure-openai; `claude-*` to
   anthropic), and the client's model name is what the provider is asked for.
A model that none of these place is not routed (404 at the door).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the schema imports this module to route; types only, no import cycle
    from kt_trio.config.schema import ProviderName, Target

# Model-name families and the providers that serve each, in the order they are preferred: the
# public model names of OpenAI run on openai first and on an Azure deployment second.
_OPENAI_FAMILIES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-")
_FAMILY_PROVIDERS: tuple[tuple[tuple[str, ...], tuple[ProviderName, ...]], ...] = (
    (_OPENAI_FAMILIES, ("openai", "azure-openai")),
    (("claude-",), ("anthropic",)),
)


def family_providers(model: str) -> tuple[ProviderName, ...]:
    """The providers that serve `model`'s family, preferred first; () for an unknown family."""
    name = model.lower()
    for prefixes, providers in _FAMILY_PROVIDERS:
        if name.startswith(prefixes):
            return providers
    return ()


def pick_target(
    targets: Sequence[Target],
    model: str | None,
    *,
    deployment: str | None = None,
    by_family: bool = True,
) -> Target | None:
    """The target among `targets` (already narrowed to the route's transport) for a request.

    No model and no deployment: the first target (DESIGN.md: "with no `?model=`, the first
    WebSocket target serves").
    """
    if deployment:
        found = _first(targets, lambda t: t.deployment == deployment) or _named(targets, deployment)
        if found is not None:
            return found
        model = model or deployment
    if not model:
        return targets[0] if targets else None
    found = _named(targets, model)
    if found is not None or not by_family:
        return found
    for provider in family_providers(model):
        for target in targets:
            if target.provider == provider:
                return target
    return None


def upstream_model(requested: object, target: Target) -> str | None:
    """The model name to ask the provider for: the target's own model when the client named the
    target by its id (or named no model), else the client's model as written (a target that
    serves it by name, or by family)."""
    if not isinstance(requested, str) or not requested or requested == target.id:
        return target.model or (requested if isinstance(requested, str) and requested else None)
    return requested


def _named(targets: Sequence[Target], name: str) -> Target | None:
    return _first(targets, lambda t: t.model == name) or _first(targets, lambda t: t.id == name)


def _first(targets: Sequence[Target], pred: Callable[[Target], bool]) -> Target | None:
    return next((t for t in targets if pred(t)), None)
