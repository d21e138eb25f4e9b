"""Prometheus series under the OpenTelemetry GenAI semantic-convention names (issue 18), beside
the gateway's own `kt_` ones (`kt_trio.metrics`, which owns the registry and the label bounds).

The OTel → Prometheus translation the OTel Prometheus exporter applies: dots become
underscores, a unit in braces (`{token}`) is dropped, `s` becomes the `_seconds` suffix.

| OTel instrument (histogram)                    | Prometheus series                                     |
|------------------------------------------------|-------------------------------------------------------|
| `gen_ai.client.token.usage`                    | `gen_ai_client_token_usage`                           |
| `gen_ai.client.operation.duration`             | `gen_ai_client_operation_duration_seconds`            |
| `gen_ai.client.operation.time_to_first_chunk`  | `gen_ai_client_operation_time_to_first_chunk_seconds` |
| `gen_ai.server.time_to_first_token`            | `gen_ai_server_time_to_first_token_seconds`           |

Labels: `gen_ai_operation_name`, `gen_ai_provider_name`, `gen_ai_request_model` (a configured
model or `other`, as on the `kt_` series), `gen_ai_token_type` (`input`, `output`: the two
well-known values; the `kt_` histogram keeps the cached and audio detail) on token usage, and
`error_type` on the duration (empty for an operation that succeeded: a Prometheus series has
one label set, and an empty label is an absent one to PromQL).

Time to first chunk is the current convention's client-side name and what the gateway measures
(it is the provider's client). `gen_ai.server.time_to_first_token` is the same measurement under
the older name (semantic conventions 1.27 to 1.36) that existing GenAI dashboards read; to the
gateway's own clients the gateway is the server. Both only for streamed answers that succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Histogram

from kt_trio.records import ResponseTiming, ResponseUsage, SessionStarted, SessionSummary
from kt_trio.telemetry import genai

# The conventions' advisory bucket boundaries (ExplicitBucketBoundaries) for each instrument.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
SERVER_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_OP, _PROVIDER, _MODEL = "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"


class GenAiMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        model_label: Callable[[str | None], str],
        error_label: Callable[[str], str],
        providers: Mapping[str, str],
    ) -> None:
        """`providers`: target id -> our provider name; `model_label`, `error_label`: the label
        bounds of `kt_trio.metrics`."""
        self._model_label = model_label
        self._error_label = error_label
        self._providers = {target: genai.provider_name(p) for target, p in providers.items()}
        # Session id -> its GenAI operation, for its usage records: one entry per open session or
        # request, removed at its end, so bounded by what the gateway admits at once.
        self._operations: dict[str, str] = {}
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used (OpenTelemetry gen_ai.client.token.usage).",
            [_OP, _PROVIDER, _MODEL, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
            [_OP, _PROVIDER, _MODEL, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.time_to_first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to the first chunk of a streamed answer (gen_ai.client.operation.time_to_first_chunk).",
            [_OP, _PROVIDER, _MODEL],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first token of a streamed answer (gen_ai.server.time_to_first_token).",
            [_OP, _PROVIDER, _MODEL],
            buckets=SERVER_TTFT_BUCKETS,
            registry=registry,
        )

    def _provider(self, target: str) -> str:
        return self._providers.get(target, "_OTHER")

    def session_started(self, record: SessionStarted) -> None:
        operation = genai.operation_of_route(record.route)
        if operation is not None:
            self._operations[record.session_id] = operation

    def session_ended(self, record: SessionSummary) -> None:
        self._operations.pop(record.session_id, None)

    def usage(self, record: ResponseUsage) -> None:
        if record.kind == "transcription":
            operation = genai.TRANSCRIPTION
        else:
            operation = self._operations.get(record.session_id, genai.CHAT)
        labels = (operation, self._provider(record.target), self._model_label(record.model))
        self.token_usage.labels(*labels, "input").observe(record.usage.input_tokens)
        self.token_usage.labels(*labels, "output").observe(record.usage.output_tokens)

    def timing(self, record: ResponseTiming) -> None:
        labels = (record.operation, self._provider(record.target), self._model_label(record.model))
        error = "" if record.error_type is None else self._error_label(record.error_type)
        self.operation_duration.labels(*labels, error).observe(record.duration_secs)
        ttft = record.time_to_first_chunk_secs
        if ttft is not None and record.error_type is None:
            self.time_to_first_chunk.labels(*labels).observe(ttft)
            self.time_to_first_token.labels(*labels).observe(ttft)
