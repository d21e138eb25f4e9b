"""Where each HTTP route of a target goes upstream (pure).

A target's `http_base_url` is its `base_url`, else the provider's public endpoint
(`kt_trio.config.schema`: OpenAI `https://api.openai.com/v1`, Anthropic
`https://api.anthropic.com/v1`). Azure names a deployment in the path and wants `api-version`.
"""

from __future__ import annotations

from urllib.parse import quote

from kt_trio.config.schema import Target

DEFAULT_AZURE_API_VERSION = "2024-10-21"
# Azure serves Responses at `/openai/responses` (the deployment is the body's `model`), from
# this API version on; a target's later `api_version` wins (dated versions sort as text).
AZURE_RESPONSES_API_VERSION = "2025-04-01-preview"


def _azure(target: Target, route: str) -> str:
    base = target.http_base_url.rstrip("/")
    deployment = quote(target.deployment or target.model or "", safe="")
    version = quote(target.api_version or DEFAULT_AZURE_API_VERSION, safe="")
    return f"{base}/openai/deployments/{deployment}/{route}?api-version={version}"


def chat_url(target: Target) -> str:
    if target.provider == "azure-openai":
        return _azure(target, "chat/completions")
    return f"{target.http_base_url.rstrip('/')}/chat/completions"


def embeddings_url(target: Target) -> str:
    if target.provider == "azure-openai":
        return _azure(target, "embeddings")
    return f"{target.http_base_url.rstrip('/')}/embeddings"


def responses_url(target: Target) -> str:
    base = target.http_base_url.rstrip("/")
    if target.provider == "azure-openai":
        version = quote(max(target.api_version or "", AZURE_RESPONSES_API_VERSION), safe="")
        return f"{base}/openai/responses?api-version={version}"
    return f"{base}/responses"


def messages_url(target: Target) -> str:
    base = target.http_base_url.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
