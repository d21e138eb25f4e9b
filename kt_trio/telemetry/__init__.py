"""Observability beyond `/metrics`' own `kt_` series (issue 18): OpenTelemetry traces
(`tracing`, imported only when tracing is on), the GenAI semantic-convention names (`genai`,
`genai_metrics`), and response timing (`clock`).

Tracing is on with `observability.otlp_endpoint` (the collector's base URL) or the standard
`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variables, unless
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. Off, no OpenTelemetry module is
imported and the relay's path holds nothing of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kt_trio.config.schema import GatewayConfig
    from kt_trio.telemetry.tracing import Tracing


def tracing_wanted(otlp_endpoint: str | None, env: Mapping[str, str] = os.environ) -> bool:
    """On with `observability.otlp_endpoint` or the standard OTLP endpoint variables, unless the
    standard switches turn the SDK or trace export off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(
        otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def start_tracing(*configs: GatewayConfig) -> Tracing | None:
    """The gateway's tracing (the first config holds the gateway-wide settings; every pack's
    targets name providers), or None when it is off."""
    endpoint = configs[0].observability.otlp_endpoint
    if not tracing_wanted(endpoint):
        return None
    from kt_trio.telemetry.tracing import open_tracing  # the SDK is imported only when tracing is on

    return open_tracing(endpoint, {t.id: t.provider for c in configs for t in c.providers.targets})
