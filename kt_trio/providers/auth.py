"""How a target's own secret goes upstream (DESIGN.md): `Authorization: Bearer` for openai,
`api-key` for azure-openai, `x-api-key` for anthropic. The client's credentials never do; they
are dropped by the header allow-list before these are added."""

from __future__ import annotations


def auth_header(provider: str, secret: str | None) -> tuple[str, str] | None:
    """(name, value) carrying `secret` to `provider`, or None without a secret."""
    if not secret:
        return None
    if provider == "azure-openai":
        return ("api-key", secret)
    if provider == "anthropic":
        return ("x-api-key", secret)
    return ("authorization", f"Bearer {secret}")
