"""Demo mode: the gateway plus the conformance mock Realtime provider on loopback.

`python -m kt_trio serve` with no `--config` runs this so a newcomer sees a governed round trip
with no API key: two targets, one per WebSocket route, both served by the mock.
"""

from __future__ import annotations

from kt_trio.config import GatewayConfig, Target, default_config

DEMO_MODEL = "gpt-realtime"
DEMO_RESPONSES_MODEL = "gpt-4.1-mini"


def demo_config(mock_url: str) -> GatewayConfig:
    return default_config(
        targets=[
            Target(id="demo-realtime", provider="openai", model=DEMO_MODEL, base_url=f"{mock_url}/v1/realtime"),
            Target(
                id="demo-responses", provider="openai", model=DEMO_RESPONSES_MODEL, base_url=f"{mock_url}/v1/responses"
            ),
        ]
    )
