"""The OpenTelemetry GenAI semantic conventions as kt_trio speaks them (pure names, no I/O).

Checked against open-telemetry/semantic-conventions-genai (`docs/gen-ai/gen-ai-metrics.md`,
`gen-ai-spans.md`, `gen-ai-realtime-spans.md`; status "Development"):

- `gen_ai.provider.name` well-known values: `openai`, `azure.ai.openai`, `anthropic` (ours:
  `openai`, `azure-openai`, `anthropic`).
- `gen_ai.operation.name`: `chat` (Chat Completions, and a Responses API response, which is a
  chat turn), `embeddings`, and `realtime_inference` for one generation inside a live
  bidirectional session (the realtime spans document: "The `gen_ai.operation.name` SHOULD be
  `realtime_inference`"). A Realtime input transcription is `transcription` (no well-known value
  exists; custom values are allowed where none applies).
- Usage attributes: `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
  `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.audio.input_tokens`,
  `gen_ai.usage.audio.output_tokens`; time to first chunk on a streamed answer's span:
  `gen_ai.response.time_to_first_chunk` (seconds).
"""

from __future__ import annotations

from kt_trio.records import TokenUsage

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_ID = "gen_ai.response.id"
LIVE_SESSION_ID = "gen_ai.live_session.id"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
ERROR_TYPE = "error.type"

REALTIME = "realtime_inference"
CHAT = "chat"
EMBEDDINGS = "embeddings"
TRANSCRIPTION = "transcription"

_PROVIDERS = {"openai": "openai", "azure-openai": "azure.ai.openai", "anthropic": "anthropic"}

# The routes whose requests are GenAI operations, and which operation each is. Passed-through
# paths (`/v1/files`, ...) are not: they get no GenAI timing.
_ROUTE_OPERATIONS = {
    "/v1/realtime": REALTIME,
    "/v1/responses": CHAT,
    "/v1/chat/completions": CHAT,
    "/v1/embeddings": EMBEDDINGS,
}


def provider_name(provider: str | None) -> str:
    """The `gen_ai.provider.name` of one of our `providers.targets[].provider` values."""
    if provider is None:
        return "_OTHER"
    return _PROVIDERS.get(provider, provider)


def operation_of_route(route: str) -> str | None:
    """The GenAI operation a request on `route` is, or None when it is none (a passthrough)."""
    return _ROUTE_OPERATIONS.get(route)


def usage_attributes(usage: TokenUsage) -> dict[str, int]:
    """`gen_ai.usage.*` span attributes of one response's (or a session's) usage; the detailed
    counts only when non-zero (the conventions: "Recommended when applicable")."""
    attrs = {"gen_ai.usage.input_tokens": usage.input_tokens, "gen_ai.usage.output_tokens": usage.output_tokens}
    details = (
        ("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens),
        ("gen_ai.usage.audio.input_tokens", usage.input_audio_tokens),
        ("gen_ai.usage.audio.output_tokens", usage.output_audio_tokens),
        ("gen_ai.usage.text.input_tokens", usage.input_text_tokens),
        ("gen_ai.usage.text.output_tokens", usage.output_text_tokens),
    )
    attrs.update((name, value) for name, value in details if value)
    return attrs
