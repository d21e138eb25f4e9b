"""Two gateway processes sharing one PostgreSQL (`store.backend: postgres`), as operators run them:
keys made with the CLI work on both, a revocation reaches a session on the other one, each
instance audits to its own chain, and `audit verify` checks both and finds a superuser's edit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import psycopg
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.conftest import serve_process
from tests.postgres_server import ADMIN, ADMIN_PASSWORD, GATEWAY_PASSWORD, PostgresServer


def kt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kt_trio", *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


async def test_two_instances_share_keys_and_audit_to_their_own_chains(
    pg_dsn: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        config = tmp_path / "gateway.yaml"
        # One file for every instance; each names its chain through the environment (unset in the CLIs).
        config.write_text(
            f"gateway:\n  state_dir: {tmp_path / 'state'}\n  auth: {{require_keys: true}}\n"
            "store:\n  backend: postgres\n  postgres_dsn: ${KT_TEST_DSN}\n  instance_id: ${KT_INSTANCE:-}\n"
            f"providers:\n  targets:\n    - {{id: mock, provider: openai, model: gpt-realtime,"
            f" base_url: '{mock.url}/v1/realtime'}}\n"
            "policies:\n  chain: [audit-logger]\n"
        )
        env = {**os.environ, "KT_TEST_DSN": pg_dsn}
        made = await trio.to_thread.run_sync(kt, env, "keys", "create", "--name", "app", "--config", str(config))
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        headers = [("Authorization", f"Bearer {key}")]

        async with AsyncExitStack() as stack:
            urls = {}
            procs = {}
            for name in ("gw-a", "gw-b"):
                proc, out = await stack.enter_async_context(
                    serve_process(
                        "--config", str(config), "--port", "0", ready=b"health:", env={**env, "KT_INSTANCE": name}
                    )
                )
                found = re.search(rb"on ws://(\S+) ", out)
                assert found is not None
                urls[name] = f"ws://{found.group(1).decode()}/v1/realtime"
                procs[name] = proc
            with trio.fail_after(30):
                for name in ("gw-a", "gw-b"):  # the CLI's key is accepted by both
                    for i in range(3):
                        async with open_websocket_url(urls[name], extra_headers=headers) as ws:
                            await ws.send_message(f"{name}-{i}")
                            assert await ws.get_message() == f"{name}-{i}"

                # Revoked through the CLI (on "another host"): a session held by gw-b ends.
                async with open_websocket_url(urls["gw-b"], extra_headers=headers) as ws:
                    await ws.send_message("hold")
                    assert await ws.get_message() == "hold"
                    revoke = ("keys", "revoke", "app", "--terminate", "--config", str(config))
                    revoked = await trio.to_thread.run_sync(kt, env, *revoke)
                    assert revoked.returncode == 0, revoked.stderr
                    with pytest.raises(ConnectionClosed) as closed:
                        await ws.get_message()
                    assert (closed.value.reason.code, closed.value.reason.reason) == (1008, "key revoked")
                for proc in procs.values():
                    proc.send_signal(signal.SIGTERM)
                for proc in procs.values():
                    assert await proc.wait() == 0

        verify = await trio.to_thread.run_sync(kt, env, "audit", "verify", "--config", str(config))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "in 2 chains" in verify.stdout
        heads = dict(
            re.findall(r"chain (gw-[ab]) OK: \d+ records \(seq 1\.\.\d+\); head (\d+:[0-9a-f]{64})", verify.stdout)
        )
        assert set(heads) == {"gw-a", "gw-b"}, verify.stdout
        assert GATEWAY_PASSWORD not in verify.stdout + verify.stderr

        tail = await trio.to_thread.run_sync(kt, env, "audit", "tail", "-n", "1000", "--config", str(config))
        lines = tail.stdout.splitlines()
        assert sum('"chain": "gw-a"' in line and '"kind": "session_start"' in line for line in lines) == 3
        assert sum('"chain": "gw-b"' in line and '"kind": "session_start"' in line for line in lines) == 4

        # A superuser edits one record of gw-a behind the triggers' back: verify names it.
        seq = int(heads["gw-a"].split(":")[0]) - 1
        admin = postgres_server.dsn(pg_dsn.rsplit("/", 1)[1], user=ADMIN, password=ADMIN_PASSWORD)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # triggers off for this session
            conn.execute(
                "UPDATE audit_records SET ts = ts || '' , session_id = 'forged' WHERE chain_id = 'gw-a' AND seq = %s",
                (seq,),
            )
        broken = await trio.to_thread.run_sync(kt, env, "audit", "verify", "--config", str(config))
        assert broken.returncode == 1, broken.stdout
        assert f"chain gw-a BROKEN at record {seq}" in broken.stdout and "chain gw-b OK" in broken.stdout
        # The anchor noted before still matches gw-b's head.
        anchored = await trio.to_thread.run_sync(
            kt, env, "audit", "verify", "--anchor", f"gw-b:{heads['gw-b']}", "--config", str(config)
        )
        assert "chain gw-b OK" in anchored.stdout
