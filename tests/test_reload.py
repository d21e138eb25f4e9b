"""Config reload under live sessions (issue 17 item 1): a gateway started from files, real
sockets, the mock provider; the reload itself triggered in-process (the signal, `--watch` and
worker paths run real processes in tests/test_reload_process.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.conftest import config_yaml
from tests.helpers import bearer, make_key, rejected_status
from tests.reload_helpers import (
    PHONE,
    event_stream,
    gateway_from_files,
    new_session_sends,
    next_of,
    one_file_gateway,
    sent_upstream,
    system_event,
)

pytestmark = pytest.mark.trio


async def test_open_session_keeps_its_chain_while_a_new_session_gets_the_new_one(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with one_file_gateway(tmp_path, []) as (gw, mock, config, events):
            assert gw.gateway.reloader is not None
            async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as old:
                await next_of(old, "session.created")
                assert PHONE in await sent_upstream(old, mock, 0, f"call {PHONE}")
                config.write_text(config_yaml(mock.url, chain=["pii-detector"], state_dir=tmp_path))
                outcome = await gw.gateway.reloader.reload("test")
                assert outcome.as_json() == {"status": "reloaded", "errors": [], "restart_required": []}
                reloaded = await system_event(events, "config_reloaded")
                assert reloaded["trigger"] == "test" and reloaded["restart_required"] == []
                async with open_websocket_url(gw.ws_url(model="gpt-realtime")) as new:
                    await next_of(new, "session.created")
                    assert "[REDACTED:PHONE]" in await sent_upstream(new, mock, 1, f"call {PHONE}")
                # The session opened before the reload still runs the chain it started with.
                assert PHONE in await sent_upstream(old, mock, 0, f"again {PHONE}")


async def test_invalid_config_changes_nothing_and_names_file_line_col(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    with trio.fail_after(30):
        async with open_mock_upstream(MockBehaviour()) as mock:
            good = config_yaml(mock.url, chain=["pii-detector"], state_dir=tmp_path)
            config.write_text(good)
            async with gateway_from_files([config], mock) as gw, event_stream(gw.port) as events:
                assert gw.gateway.reloader is not None
                # A typo'd key on line 2 and a chain with no redaction: neither may apply.
                bad = good.replace("gateway:\n", "gateway:\n  shutdown_timeout_sec: 3\n").replace(
                    "chain: [pii-detector]", "chain: []"
                )
                config.write_text(bad)
                outcome = await gw.gateway.reloader.reload("test")
                assert outcome.status == "rejected"
                assert len(outcome.errors) == 1
                assert outcome.errors[0].startswith(f"{config}:2:3: gateway.shutdown_timeout_sec: ")
                rejected = await system_event(events, "config_rejected")
                assert rejected["errors"] == list(outcome.errors)
                assert "[REDACTED:PHONE]" in await new_session_sends(
                    gw.ws_url(model="gpt-realtime"), mock, 0, f"call {PHONE}"
                )


async def test_lowered_per_ip_limit_applies_to_new_sessions_only(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"

    def with_limit(url: str, n: int) -> str:
        per_ip = f"  rate_limit:\n    per_ip:\n      connections: {n}\n"
        return config_yaml(url, chain=[], state_dir=tmp_path, providers_extra=per_ip)

    with trio.fail_after(30):
        async with open_mock_upstream(MockBehaviour()) as mock:
            config.write_text(with_limit(mock.url, 3))
            async with gateway_from_files([config], mock) as gw:
                assert gw.gateway.reloader is not None
                url = gw.ws_url(model="gpt-realtime")
                async with open_websocket_url(url) as a, open_websocket_url(url) as b:
                    await next_of(a, "session.created")
                    await next_of(b, "session.created")
                    config.write_text(with_limit(mock.url, 1))
                    assert (await gw.gateway.reloader.reload("test")).ok
                    # Both open sessions keep their slots and keep working ...
                    for i, ws in enumerate((a, b)):
                        assert await sent_upstream(ws, mock, i, "still here") == "still here"
                    # ... while a new one is refused under the lowered limit.
                    assert await rejected_status(url) == 429
                await gw.gateway.wait_sessions(lambda n: n == 0)
                async with open_websocket_url(url) as c:
                    await next_of(c, "session.created")
                    assert await rejected_status(url) == 429


async def test_open_breaker_stays_open_across_a_reload(tmp_path: Path) -> None:
    dead = trio.socket.socket()
    await dead.bind(("127.0.0.1", 0))  # bound, never listening: every dial is refused
    dead_port = dead.getsockname()[1]
    config = tmp_path / "gw.yaml"

    def yaml(url: str, chain: list[str]) -> str:
        down = f"    - id: down\n      provider: openai\n      model: gpt-down\n      base_url: ws://127.0.0.1:{dead_port}/v1/realtime\n"
        breaker = "  circuit_breaker:\n    failure_threshold: 1\n    recovery_timeout_secs: 120\n"
        return config_yaml(url, chain=chain, state_dir=tmp_path, target_extra=down, providers_extra=breaker)

    with trio.fail_after(30), dead:
        async with open_mock_upstream(MockBehaviour()) as mock:
            config.write_text(yaml(mock.url, []))
            async with gateway_from_files([config], mock) as gw, event_stream(gw.port) as events:
                assert gw.gateway.reloader is not None
                url = gw.ws_url(model="gpt-down")
                assert await rejected_status(url) == 502  # the dial fails: the breaker opens
                assert await rejected_status(url) == 503  # open: refused without a dial
                config.write_text(yaml(mock.url, ["pii-detector"]))
                assert (await gw.gateway.reloader.reload("test")).ok
                await system_event(events, "config_reloaded")
                assert await rejected_status(url) == 503  # still open after the reload
                assert gw.gateway.health.state("down") == "open"
                # The healthy target is untouched and serves with the new chain.
                assert "[REDACTED:PHONE]" in await new_session_sends(
                    gw.ws_url(model="gpt-realtime"), mock, 0, f"call {PHONE}"
                )


async def test_restart_only_settings_keep_their_old_value_and_are_named(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with one_file_gateway(tmp_path, []) as (gw, mock, config, events):
            assert gw.gateway.reloader is not None
            moved = tmp_path / "elsewhere"
            config.write_text(
                config_yaml(mock.url, chain=["pii-detector"], state_dir=moved, gateway_extra="  workers: 3\n")
            )
            outcome = await gw.gateway.reloader.reload("test")
            assert outcome.ok
            assert outcome.restart_required == ("gateway.workers", "gateway.state_dir")
            reloaded = await system_event(events, "config_reloaded")
            assert reloaded["restart_required"] == ["gateway.workers", "gateway.state_dir"]
            assert gw.gateway.config.gateway.state_dir == str(tmp_path)
            assert gw.gateway.config.gateway.workers == 1
            assert gw.gateway.config.policies.chain == ("pii-detector",)


async def test_reload_with_packs_swaps_each_pack_and_adds_new_ones(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    with trio.fail_after(30):
        async with open_mock_upstream(MockBehaviour()) as mock:
            (packs / "00-default.yaml").write_text(
                "pack:\n  name: main\n" + config_yaml(mock.url, chain=[], state_dir=tmp_path)
            )
            async with gateway_from_files([packs], mock) as gw:
                assert gw.gateway.reloader is not None
                (packs / "00-default.yaml").write_text(
                    "pack:\n  name: main\n" + config_yaml(mock.url, chain=["pii-detector"], state_dir=tmp_path)
                )
                (packs / "10-strict.yaml").write_text(
                    "pack:\n  name: strict\n" + config_yaml(mock.url, chain=["prompt-injection"])
                )
                outcome = await gw.gateway.reloader.reload("test")
                assert outcome.ok, outcome
                assert list(gw.gateway.packs) == ["main", "strict"]
                assert "[REDACTED:PHONE]" in await new_session_sends(
                    gw.ws_url(model="gpt-realtime"), mock, 0, f"call {PHONE}"
                )
                # A broken pack file rejects the whole reload: both packs stay as they are.
                (packs / "10-strict.yaml").write_text("pack:\n  name: strict\npolicies:\n  chain: [no-such-policy]\n")
                outcome = await gw.gateway.reloader.reload("test")
                assert outcome.status == "rejected"
                assert outcome.errors[0].startswith(f"{packs / '10-strict.yaml'}:4:")
                assert list(gw.gateway.packs) == ["main", "strict"]
                assert gw.gateway.packs["strict"].config.policies.chain == ("prompt-injection",)


async def test_post_admin_reload_needs_an_admin_key_and_answers_each_outcome(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    user = make_key(tmp_path, "app", scopes=["realtime"])
    with trio.fail_after(30):
        async with open_mock_upstream(MockBehaviour()) as mock:
            good = config_yaml(mock.url, chain=[], state_dir=tmp_path)
            config.write_text(good)
            async with (
                gateway_from_files([config], mock) as gw,
                httpx.AsyncClient(base_url=gw.base_url) as http,
                event_stream(gw.port, admin) as events,
            ):
                refused = await http.post("/admin/reload", headers=dict(bearer(user)))
                assert refused.status_code == 403
                config.write_text(good.replace("chain: []", "chain: [pii-detector]"))
                ok = await http.post("/admin/reload", headers=dict(bearer(admin)))
                assert ok.status_code == 200
                assert ok.json() == {"status": "reloaded", "errors": [], "restart_required": []}
                assert (await system_event(events, "config_reloaded"))["trigger"] == "admin"
                action = await system_event(events, "admin_action")
                assert action["action"] == "config_reload" and action["admin"] == "ops"
                config.write_text(good.replace("chain: []", "chain: [pii-detector, nope]"))
                bad = await http.post("/admin/reload", headers=dict(bearer(admin)))
                assert bad.status_code == 422
                body = bad.json()
                assert body["status"] == "rejected" and body["restart_required"] == []
                (error,) = body["errors"]
                assert error.startswith(f"{config}:") and ": policies.chain[1]: " in error
                assert body["error"]["code"] == "config_rejected"
                assert (await system_event(events, "config_rejected"))["errors"] == [error]
                # The rejected reload changed nothing: the first reload's chain runs.
                assert "[REDACTED:PHONE]" in await new_session_sends(
                    gw.ws_url(model="gpt-realtime"), mock, 0, f"call {PHONE}"
                )
