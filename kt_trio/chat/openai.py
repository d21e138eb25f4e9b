"""OpenAI and Azure OpenAI chat completions: where the request goes and what it carries (pure).

The body passes through as the client wrote it (only `model`, a redaction, or the gateway's
`stream_options.include_usage` change it). The client's credentials never go upstream
(DESIGN.md): the target's secret is injected, `Authorization: Bearer` for openai and `api-key`
for azure-openai.
"""

from __future__ import annotations

from typing import Any

from kt_trio.config.routing import upstream_model
from kt_trio.config.schema import Target
from kt_trio.providers.auth import auth_header
from kt_trio.providers.urls import chat_url
from kt_trio.providers.usage import cached_of, count, text_usage
from kt_trio.records import TokenUsage

__all__ = ["chat_url", "headers", "prepare", "usage_of"]


def headers(target: Target, secret: str | None, *, stream: bool) -> dict[str, str]:
    out = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        # A compressed stream would be held by the decoder; chunks are small anyway.
        "accept-encoding": "identity",
    }
    auth = auth_header(target.provider, secret)
    if auth is not None:
        out[auth[0]] = auth[1]
    return out


def prepare(body: dict[str, Any], target: Target) -> bool:
    """Rewrite `body` for the upstream in place. Returns whether the client asked for usage in
    its stream (when it did not, the gateway asks anyway and strips the extra chunk)."""
    if target.provider == "openai":
        model = upstream_model(body.get("model"), target)
        if model is not None:
            body["model"] = model
    else:
        body.pop("model", None)  # azure: the deployment names the model
    if not body.get("stream"):
        return False
    opts = body.get("stream_options")
    client_wants = isinstance(opts, dict) and bool(opts.get("include_usage"))
    if not client_wants:
        body["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return client_wants


def usage_of(usage: Any) -> TokenUsage | None:
    """`usage` of a completion or of the final stream chunk, as the gateway counts it."""
    if not isinstance(usage, dict):
        return None
    return text_usage(
        count(usage.get("prompt_tokens")),
        count(usage.get("completion_tokens")),
        count(usage.get("total_tokens")),
        cached_of(usage.get("prompt_tokens_details")),
    )
