"""A small public API for testing applications against kt_trio.

    async with open_gateway() as gw:                 # demo config, mock provider wired in
        async with open_websocket_url(gw.ws_url("/v1/realtime", model="gpt-realtime")) as ws:
            ...

    async with open_gateway(my_config) as gw:        # your config; its WebSocket targets are
        ...                                          # pointed at the mock (wire_mock=True)

`gw.mock` is the `kt_trio.mocks.realtime` server: what it received, and its behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import attrs
import trio
from attrs import define

from kt_trio.config import GatewayConfig, load_config, load_config_text
from kt_trio.demo import demo_config
from kt_trio.mocks.realtime import MockBehaviour, MockUpstream, open_mock_upstream
from kt_trio.server.gateway import Gateway


@define
class RunningGateway:
    gateway: Gateway
    port: int
    mock: MockUpstream | None
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, route: str = "/v1/realtime", **query: str) -> str:
        q = f"?{urlencode(query)}" if query else ""
        return f"ws://{self.host}:{self.port}{route}{q}"


def _with_mock(config: GatewayConfig, mock_url: str) -> GatewayConfig:
    targets = []
    for t in config.providers.targets:
        if t.serves_websocket:
            path = urlsplit(t.base_url).path if t.base_url else "/v1/realtime"
            t = attrs.evolve(t, base_url=mock_url + (path or "/v1/realtime"), transport="websocket")
        targets.append(t)
    return attrs.evolve(config, providers=attrs.evolve(config.providers, targets=tuple(targets)))


@asynccontextmanager
async def open_gateway(
    config: GatewayConfig | str | Path | None = None,
    *,
    behaviour: MockBehaviour | None = None,
    wire_mock: bool = True,
    secrets: dict[str, str] | None = None,
) -> AsyncIterator[RunningGateway]:
    """Runs a gateway on an ephemeral loopback port for the duration of the block.

    `config` is a GatewayConfig, YAML text, or a path to a config file; None is the demo config.
    With `wire_mock`, a mock provider is started and every WebSocket target is pointed at it.
    """
    if isinstance(config, Path):
        config = load_config(config)
    elif isinstance(config, str):
        config = load_config_text(config, "<open_gateway>")
    async with open_mock_upstream(behaviour or MockBehaviour()) as mock:
        if config is None:
            config = demo_config(mock.url)
        elif wire_mock:
            config = _with_mock(config, mock.url)
        async with serve_gateway(Gateway(config, secrets=secrets), mock=mock) as running:
            yield running


@asynccontextmanager
async def serve_gateway(gateway: Gateway, *, mock: MockUpstream | None = None) -> AsyncIterator[RunningGateway]:
    """Serves `gateway` on an ephemeral loopback port for the block; shuts it down (draining
    its sessions) on the way out."""
    async with trio.open_nursery() as nursery:
        port = await nursery.start(gateway.serve)
        try:
            yield RunningGateway(gateway=gateway, port=port, mock=mock)
        finally:
            gateway.shutdown()
