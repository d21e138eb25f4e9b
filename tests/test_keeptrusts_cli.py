"""Keeptrusts users' commands (issue 19), typed as its documentation writes them:
`gateway run --policy-config F --port P` is `serve`, `gateway-key create --name N
--configuration-id PACK --expires-in 90d` is `keys create --pack PACK`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from conformance.mock_upstream import MockBehaviour, open_mock_upstream
from tests.conftest import serve_process

PHONE = "call me at 415-555-0132"


def kt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kt_trio", *args], capture_output=True, text=True, timeout=30, cwd=cwd, check=False
    )


def test_help_lists_keeptrusts_names_beside_ours() -> None:
    top = kt("--help")
    assert top.returncode == 0
    for name in ("serve", "gateway", "keys", "gateway-key"):
        assert name in top.stdout
    run_help = kt("gateway", "run", "--help").stdout
    assert "--policy-config" in run_help and "--port" in run_help
    create_help = kt("gateway-key", "create", "--help").stdout
    assert "--configuration-id" in create_help and "--expires-in" in create_help


async def test_keeptrusts_commands_verbatim_against_a_running_gateway(tmp_path: Path) -> None:
    async with open_mock_upstream(MockBehaviour(mode="echo")) as mock:
        (tmp_path / "policy-config.yaml").write_text(
            "pack:\n  name: my-config\n"
            f"gateway:\n  state_dir: {tmp_path / 'state'}\n  auth: {{require_keys: true}}\n"
            f"providers:\n  targets:\n    - {{id: mock, provider: openai, model: gpt-realtime,"
            f" base_url: '{mock.url}/v1/realtime'}}\n"
            "policies:\n  chain: [pii-detector]\n"
        )
        async with serve_process(
            "--policy-config",
            "./policy-config.yaml",
            "--port",
            "0",
            ready=b"health:",
            cwd=tmp_path,
            command=("gateway", "run"),
        ) as (proc, out):
            url = "ws://" + re.search(rb"on ws://(\S+) ", out).group(1).decode() + "/v1/realtime"
            created = await trio.to_thread.run_sync(
                lambda: kt(
                    "gateway-key",
                    "create",
                    "--name",
                    "support-bot",
                    "--configuration-id",
                    "my-config",
                    "--expires-in",
                    "90d",
                    "--config",
                    "./policy-config.yaml",
                    cwd=tmp_path,
                )
            )
            assert created.returncode == 0, created.stderr
            key = created.stdout.strip()
            assert key.startswith("kt_gk_")
            async with open_websocket_url(url, extra_headers=[("Authorization", f"Bearer {key}")]) as ws:
                item = {
                    "type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PHONE}]},
                }
                await ws.send_message(json.dumps(item))
                echoed = await ws.get_message()  # the echo provider returns what reached it
                assert "415-555-0132" not in echoed and "[REDACTED:PHONE]" in echoed
            listed = await trio.to_thread.run_sync(
                lambda: kt("gateway-key", "list", "--json", "--config", "./policy-config.yaml", cwd=tmp_path)
            )
            (entry,) = json.loads(listed.stdout)
            assert entry["name"] == "support-bot" and entry["pack"] == "my-config"
            assert entry["expires_at"] is not None
            assert key not in listed.stdout
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                assert await proc.wait() == 0
