"""`python -m kt_trio keys create|list|revoke` end to end through subprocesses, checked with `KeyRing`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from kt_trio.keys import DB_NAME, KeyRing
from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.conftest import serve_process

DAY = 86400.0


def kt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kt_trio", "keys", *args], capture_output=True, text=True, timeout=30, check=False
    )


def create(state_dir: Path, name: str, *extra: str) -> str:
    result = kt("create", "--name", name, "--state-dir", str(state_dir), *extra)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("kt_gk_") and len(key) == len("kt_gk_") + 43  # token_urlsafe(32): 256 bits
    assert key not in result.stderr
    return key


def all_bytes(state_dir: Path) -> bytes:
    """Every file the store left in state_dir (the db and any WAL / shm beside it)."""
    return b"".join(p.read_bytes() for p in sorted(state_dir.iterdir()) if p.is_file())


async def test_created_key_authenticates_and_list_never_shows_it(tmp_path: Path) -> None:
    key = create(
        tmp_path,
        "alice",
        "--pack", "strict",
        "--team", "payments",
        "--scopes", "realtime,events",
        "--expires-in", "90d",
        "--max-sessions", "2",
        "--messages-per-minute", "30",
        "--daily-tokens", "1000",
    )  # fmt: skip
    ring = await KeyRing.open(tmp_path)
    async with ring:
        ok = await ring.authenticate(key, scope="realtime")
        assert (ok.ok, ok.status) == (True, 200)
        assert ok.key is not None
        assert (ok.key.name, ok.key.pack, ok.key.team) == ("alice", "strict", "payments")
        assert ok.key.scopes == ("realtime", "events")
        assert (ok.key.max_sessions, ok.key.messages_per_minute, ok.key.daily_tokens) == (2, 30, 1000)
        assert ok.key.prefix == key[:18] and ok.key.expires_at is not None
        assert abs(ok.key.expires_at - (time.time() + 90 * DAY)) < 60

    table = kt("list", "--state-dir", str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert key not in table.stdout and key[18:] not in table.stdout
    header, row = table.stdout.splitlines()
    assert header.split()[:5] == ["NAME", "PREFIX", "PACK", "TEAM", "SCOPES"]
    assert row.split()[:5] == ["alice", key[:18], "strict", "payments", "realtime,events"]
    assert row.split()[-1] == "active" and "never" not in row.split()[5:7]  # expiry shown, last use noted

    listed = kt("list", "--json", "--state-dir", str(tmp_path))
    assert key not in listed.stdout
    [entry] = json.loads(listed.stdout)
    assert entry["name"] == "alice" and entry["prefix"] == key[:18] and entry["state"] == "active"
    assert entry["last_used_at"] is not None and "hash" not in entry
    assert key.encode() not in all_bytes(tmp_path)


async def test_revoke_by_name_or_prefix_gives_401_with_the_reason(tmp_path: Path) -> None:
    alice = create(tmp_path, "alice")
    bob = create(tmp_path, "bob")
    async with await KeyRing.open(tmp_path) as ring:
        assert (await ring.authenticate(alice, scope="chat")).ok
        # Revoked while the ring is open: the next handshake sees it, no reopen.
        revoked = kt("revoke", "alice", "--state-dir", str(tmp_path))
        assert revoked.returncode == 0 and "revoked key 'alice'" in revoked.stdout, revoked.stderr
        decision = await ring.authenticate(alice, scope="chat")
        assert (decision.ok, decision.status) == (False, 401)
        assert "revoked" in decision.message and alice not in decision.message
        assert await ring.revoked_since({"alice", "bob"}) == set()  # revoked, but not with --terminate

        by_prefix = kt("revoke", bob[6:18], "--terminate", "--state-dir", str(tmp_path))  # without kt_gk_
        assert by_prefix.returncode == 0 and "live sessions will be closed" in by_prefix.stdout
        assert (await ring.authenticate(bob, scope="chat")).status == 401
        assert await ring.revoked_since({"alice", "bob", "carol"}) == {"bob"}

    states = {e["name"]: e["state"] for e in json.loads(kt("list", "--json", "--state-dir", str(tmp_path)).stdout)}
    assert states == {"alice": "revoked", "bob": "revoked"}
    missing = kt("revoke", "nobody", "--state-dir", str(tmp_path))
    assert missing.returncode == 1 and "no key" in missing.stderr


async def test_a_key_created_while_the_ring_is_open_is_seen(tmp_path: Path) -> None:
    async with await KeyRing.open(tmp_path) as ring:  # keys.db does not exist yet: open creates it
        assert (await ring.authenticate("kt_gk_" + "x" * 43, scope="realtime")).status == 401
        key = create(tmp_path, "late")
        assert (await ring.authenticate(key, scope="realtime")).ok


def test_bad_arguments_and_duplicates_are_refused(tmp_path: Path) -> None:
    create(tmp_path, "alice")
    duplicate = kt("create", "--name", "alice", "--state-dir", str(tmp_path))
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr and duplicate.stdout == ""
    for args, message in (
        (("--scopes", "realtime,root"), "unknown scope 'root'"),
        (("--expires-in", "soon"), "bad duration"),
        (("--max-sessions", "0"), "at least 1"),
    ):
        result = kt("create", "--name", "bob", "--state-dir", str(tmp_path), *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    bad_name = kt("create", "--name", "has space", "--state-dir", str(tmp_path))
    assert bad_name.returncode == 1 and "invalid key name" in bad_name.stderr
    assert [e["name"] for e in json.loads(kt("list", "--json", "--state-dir", str(tmp_path)).stdout)] == ["alice"]


def test_state_dir_from_a_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"gateway:\n  state_dir: {tmp_path / 'state'}\n", encoding="utf-8")
    result = kt("create", "--name", "alice", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / DB_NAME).exists()
    assert "alice" in kt("list", "--config", str(config)).stdout


async def test_create_and_revoke_through_the_cli_against_a_running_gateway(tmp_path: Path) -> None:
    """The whole story as an operator runs it: `serve` in one process, `keys` in others."""
    async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"gateway:\n  state_dir: {tmp_path / 'state'}\n  auth: {{require_keys: true}}\n"
            f"providers:\n  targets:\n    - {{id: mock, provider: openai, model: gpt-realtime,"
            f" base_url: '{mock.url}/v1/realtime'}}\n"
        )
        async with serve_process("--config", str(config), "--port", "0", ready=b"health:") as (proc, out):
            url = re.search(rb"on ws://(\S+) ", out).group(1).decode() + "/v1/realtime"
            key = create(tmp_path / "state", "live-app")  # created while the gateway runs
            headers = [("Authorization", f"Bearer {key}")]
            async with open_websocket_url(f"ws://{url}", extra_headers=headers) as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                revoked = await trio.to_thread.run_sync(
                    lambda: kt("revoke", "live-app", "--terminate", "--state-dir", str(tmp_path / "state"))
                )
                assert revoked.returncode == 0, revoked.stderr
                with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
                assert (closed.value.reason.code, closed.value.reason.reason) == (1008, "key revoked")
            with pytest.raises(ConnectionRejected) as refused:
                async with open_websocket_url(f"ws://{url}", extra_headers=headers):
                    pass
            assert refused.value.status_code == 401 and b"revoked" in refused.value.body
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await proc.wait() == 0
