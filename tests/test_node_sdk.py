"""The Node `openai` package (issue 19) drives the gateway as a Node application would: a
streamed chat completion, a Realtime WebSocket round trip, and the same through `AzureOpenAI`,
each with a redaction seen at the mock provider.

The SDK and its `ws` dependency are pinned in tests/node/package-lock.json and installed there on
first use (`npm ci`); Node itself comes from the machine (`.ci/run` installs it when missing).
The Node SDK always dials Realtime over `wss://`, so its WebSocket tests reach the gateway through
a TLS front (a `trustme` certificate, trusted by Node through NODE_EXTRA_CA_CERTS) that relays
bytes to the gateway's port, as a TLS-terminating load balancer would.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from conformance.mock_http_upstream import HttpMockBehaviour, open_mock_http_upstream
from conformance.mock_upstream import MockBehaviour
from kt_trio.config import load_config_text
from kt_trio.server.gateway import Gateway
from kt_trio.testing import serve_gateway
from tests.chat_fixtures import SECRETS, chat_config
from tests.conftest import running

NODE_DIR = Path(__file__).parent / "node"
PHONE = "415-555-0132"


@pytest.fixture(scope="module")
def node_sdk() -> Path:
    node = shutil.which("node")
    assert node is not None, "node is not installed (.ci/run installs Debian's nodejs and npm)"
    if not (NODE_DIR / "node_modules" / "openai").exists():
        npm = shutil.which("npm")
        assert npm is not None, "npm is not installed (.ci/run installs Debian's npm)"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    return NODE_DIR


async def run_node(scenario: str, ca: Path | None = None, **args: Any) -> dict[str, Any]:
    env = dict(os.environ)
    if ca is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca)
    with trio.fail_after(60):
        done = await trio.run_process(
            ["node", "sdk.mjs", scenario, json.dumps(args)],
            cwd=NODE_DIR,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


@asynccontextmanager
async def tls_front(port: int, tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """A TLS listener on 127.0.0.1 relaying each connection's bytes to the gateway's `port`;
    yields its port and the CA file that makes Node trust it."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    async def relay(tls: trio.SSLStream[trio.SocketStream]) -> None:
        async with tls, await trio.open_tcp_stream("127.0.0.1", port) as plain:

            async def pump(src: Any, dst: Any) -> None:
                try:
                    while data := await src.receive_some(65536):
                        await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                nursery.cancel_scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, tls, plain)
                nursery.start_soon(pump, plain, tls)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_ssl_over_tcp, relay, 0, context, host="127.0.0.1"))
        yield listeners[0].transport_listener.socket.getsockname()[1], ca_file
        nursery.cancel_scope.cancel()


async def test_node_sdk_streamed_chat_completion_is_redacted(node_sdk: Path) -> None:
    behaviour = HttpMockBehaviour(chunks=["Call me at 415-5", "55-0132 tomorrow"])
    async with open_mock_http_upstream(behaviour) as mock:
        config = load_config_text(chat_config(mock.url, ["pii-detector"]), "node.yaml")
        async with serve_gateway(Gateway(config, secrets=SECRETS)) as gw:
            out = await run_node(
                "chat-stream", baseURL=f"{gw.base_url}/v1", key="sk-node", model="gpt-4o-mini", text=f"I am {PHONE}"
            )
    assert PHONE not in out["text"] and "[REDACTED:PHONE]" in out["text"]
    (request,) = mock.requests
    assert PHONE not in json.dumps(request.body) and "[REDACTED:PHONE]" in json.dumps(request.body)


async def test_node_sdk_realtime_round_trip_is_redacted(node_sdk: Path, tmp_path: Path) -> None:
    async with running(MockBehaviour(), chain=["pii-detector"]) as gw, tls_front(gw.port, tmp_path) as (port, ca):
        out = await run_node(
            "realtime",
            ca,
            baseURL=f"https://127.0.0.1:{port}/v1",
            key="sk-node",
            model="gpt-realtime",
            text=f"my phone is {PHONE}",
        )
        conn = (await gw.mock.wait_for_connections(1))[0]  # type: ignore[union-attr]
    assert "conversation.item.added" in out["seen"]
    sent = json.dumps(conn.json_messages())
    assert PHONE not in sent and "[REDACTED:PHONE]" in sent


async def test_node_azure_client_chat_and_realtime(node_sdk: Path, tmp_path: Path) -> None:
    behaviour = HttpMockBehaviour(chunks=["ok"])
    async with open_mock_http_upstream(behaviour) as mock:
        config = load_config_text(chat_config(mock.url, ["pii-detector"]), "node-azure.yaml")
        async with serve_gateway(Gateway(config, secrets=SECRETS)) as gw:
            out = await run_node(
                "azure-chat",
                endpoint=gw.base_url,
                apiVersion="2024-10-21",
                deployment="dep-one",
                key="node-azure-key",
                text=f"call {PHONE}",
            )
    assert out["text"] == "ok"
    (request,) = mock.requests
    assert request.path == "/openai/deployments/dep-one/chat/completions"
    assert request.headers["api-key"] == SECRETS["az"]
    assert PHONE not in json.dumps(request.body)

    async with running(MockBehaviour(), chain=["pii-detector"]) as gw, tls_front(gw.port, tmp_path) as (port, ca):
        out = await run_node(
            "azure-realtime",
            ca,
            endpoint=f"https://127.0.0.1:{port}",
            apiVersion="2025-04-01-preview",
            deployment="gpt-realtime",
            key="node-azure-key",
            text=f"phone {PHONE}",
        )
        conn = (await gw.mock.wait_for_connections(1))[0]  # type: ignore[union-attr]
    assert "conversation.item.added" in out["seen"]
    assert conn.path.startswith("/v1/realtime") and "deployment" not in conn.path
    assert PHONE not in json.dumps(conn.json_messages())
