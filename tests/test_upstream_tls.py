"""wss:// upstreams: a certificate failure is reported at once as that, not as a timeout."""

from __future__ import annotations

import json
import ssl

import pytest
import trio
import trustme
from trio_websocket import ConnectionRejected, WebSocketRequest, open_websocket_url, serve_websocket

from kt_trio.config import load_config_text
from kt_trio.server.gateway import Gateway

# Each test as a whole: far above what it needs, so a lost event fails it instead of hanging.
DEADLINE = 30


async def _tls_provider(nursery: trio.Nursery, ca: trustme.CA) -> int:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(json.dumps({"type": "session.created", "session": {"id": "tls"}}))
        await ws.get_message()

    server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, server_ctx)
    return server.port


async def _gateway(nursery: trio.Nursery, port: int, ssl_context: ssl.SSLContext | None) -> int:
    config = load_config_text(
        "providers:\n  targets:\n    - id: tls\n      provider: openai\n      model: m\n"
        f"      base_url: wss://127.0.0.1:{port}/v1/realtime\n      connect_timeout_secs: 5\n",
        "tls.yaml",
    )
    gateway = Gateway(config, upstream_ssl_context=ssl_context)
    return await nursery.start(gateway.serve)


async def test_untrusted_certificate_is_a_502_naming_the_certificate() -> None:
    ca = trustme.CA()  # not in the system's trust store
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            provider = await _tls_provider(nursery, ca)
            port = await _gateway(nursery, provider, None)
            with trio.fail_after(3):  # far below connect_timeout_secs: a timeout would not be "at once"
                with pytest.raises(ConnectionRejected) as info:
                    async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime"):
                        pass
            error = json.loads(info.value.body)["error"]
            assert info.value.status_code == 502
            assert error["code"] == "upstream_tls_error"
            assert "certificate verification failed" in error["message"]
            nursery.cancel_scope.cancel()


async def test_trusted_certificate_relays() -> None:
    ca = trustme.CA()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            provider = await _tls_provider(nursery, ca)
            port = await _gateway(nursery, provider, client_ctx)
            async with open_websocket_url(f"ws://127.0.0.1:{port}/v1/realtime") as ws:
                assert json.loads(await ws.get_message())["session"]["id"] == "tls"
            nursery.cancel_scope.cancel()
