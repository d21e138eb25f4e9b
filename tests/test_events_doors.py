"""`/ws/events` doors and key lifetimes (issue 13), through a real gateway: cross-origin browsers
refused even with auth off, anonymous subscribers capped apart from authenticated ones, and a
revoked or expired key ends its subscriptions and sessions with 1008."""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from pathlib import Path

from trio_websocket import open_websocket_url

from conformance.mock_upstream import MockBehaviour
from tests.conftest import running
from tests.helpers import bearer, closed_with, make_key, rejected, rejected_status, revoke


async def test_cross_origin_browsers_are_refused_even_with_auth_off() -> None:
    extra = "features:\n  websocket:\n    allowed_origins: [https://console.example.com]\n"
    async with running(extra=extra) as gw:
        url = f"ws://127.0.0.1:{gw.port}/ws/events"
        refusal = await rejected(url, [("Origin", "https://evil.example")])
        assert refusal.status_code == 403
        assert json.loads(refusal.body)["error"]["code"] == "origin_not_allowed"
        assert await rejected_status(url, [("Origin", "null")]) == 403
        assert await rejected_status(url, [("Origin", f"http://localhost:{gw.port}")]) == 403  # another host name
        assert await rejected_status(url, [("Origin", "https://console.example.com")]) is None
        assert await rejected_status(url, [("Origin", f"http://127.0.0.1:{gw.port}")]) is None  # same origin
        assert await rejected_status(url) is None  # not a browser


async def test_anonymous_subscribers_cannot_lock_out_the_operator(tmp_path: Path) -> None:
    admin = make_key(tmp_path, "ops-admin", scopes=["admin"])
    extra = (
        "features:\n  websocket:\n    max_connections: 4\n    max_anonymous_connections: 3\n"
        "    tokens: [dashboard-token]\n"
    )
    async with running(state_dir=tmp_path, extra=extra) as gw:
        url = f"ws://127.0.0.1:{gw.port}/ws/events"
        async with AsyncExitStack() as stack:
            for _ in range(3):
                await stack.enter_async_context(open_websocket_url(url))
            refusal = await rejected(url)
            assert refusal.status_code == 503
            assert json.loads(refusal.body)["error"]["code"] == "too_many_subscribers"
            # The operator still gets in, with a gateway key or the configured token.
            async with (
                open_websocket_url(url, extra_headers=bearer(admin)),
                open_websocket_url(url + "?token=dashboard-token"),
            ):
                assert gw.gateway.subscribers.anonymous == 3
                assert gw.gateway.subscribers.authenticated == 2


async def test_revoked_key_ends_its_subscription_with_1008(tmp_path: Path) -> None:
    key = make_key(tmp_path, "dash", scopes=["admin"])
    async with running(state_dir=tmp_path) as gw:
        async with open_websocket_url(f"ws://127.0.0.1:{gw.port}/ws/events", extra_headers=bearer(key)) as ws:
            revoke(tmp_path, "dash", terminate=False)  # plain revoke: no --terminate
            assert await closed_with(ws) == (1008, "key revoked")


async def test_expired_key_ends_its_subscription_with_1008(tmp_path: Path) -> None:
    key = make_key(tmp_path, "short-lived", scopes=["admin"], expires_at=time.time() + 1.5)
    async with running(state_dir=tmp_path) as gw:
        async with open_websocket_url(f"ws://127.0.0.1:{gw.port}/ws/events", extra_headers=bearer(key)) as ws:
            assert await closed_with(ws) == (1008, "key expired")


async def test_expired_key_ends_its_session_with_1008(tmp_path: Path) -> None:
    key = make_key(tmp_path, "short-session", expires_at=time.time() + 1.5)
    async with running(MockBehaviour(mode="echo"), state_dir=tmp_path) as gw:
        async with open_websocket_url(gw.ws_url(), extra_headers=bearer(key)) as ws:
            await ws.send_message("hello")
            assert await ws.get_message() == "hello"
            assert await closed_with(ws) == (1008, "key expired")
        await gw.gateway.wait_sessions(lambda n: n == 0)
        assert gw.gateway.recent_summaries[-1].close_reason == "key expired"
