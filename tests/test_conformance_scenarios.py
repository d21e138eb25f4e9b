"""The conformance scenarios (conformance/scenarios.py) pass against this gateway, and can fail."""

from __future__ import annotations

import re
import signal
import socket
import sys
from pathlib import Path

import trio

from conformance.scenarios import SCENARIOS, Context, run_scenarios
from kt_trio.mocks.realtime import MockBehaviour
from tests.conftest import running, serve_process


async def test_every_scenario_passes_against_kt_trio() -> None:
    async with running(MockBehaviour(), chain=["prompt-injection", "pii-detector"]) as gw:
        assert gw.mock is not None
        results = await run_scenarios(Context(f"ws://127.0.0.1:{gw.port}", gw.mock))
    assert [r for r in results if not r.ok] == []
    assert len(results) == len(SCENARIOS)


async def test_policy_scenarios_fail_against_a_gateway_without_policies() -> None:
    async with running(MockBehaviour()) as gw:
        assert gw.mock is not None
        results = await run_scenarios(Context(f"ws://127.0.0.1:{gw.port}", gw.mock))
    failed = {r.name for r in results if not r.ok}
    assert failed == {
        "pii_is_redacted_before_the_provider",
        "blocked_input_is_an_error_event",
        "invalid_json_is_an_error_event",
    }


async def test_the_command_line_runs_the_scenarios_against_a_served_gateway(tmp_path: Path) -> None:
    """As a user of another gateway would: the suite's own mock on a port, the gateway a process."""
    with socket.socket() as probe:  # a free port for the suite's mock; the gateway dials it later
        probe.bind(("127.0.0.1", 0))
        mock_port = probe.getsockname()[1]
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"gateway: {{state_dir: {tmp_path / 'state'}}}\n"
        "providers:\n  targets:\n"
        f"    - {{id: mock, provider: openai, model: gpt-realtime, base_url: 'ws://127.0.0.1:{mock_port}/v1/realtime'}}\n"
        "policies:\n  chain: [prompt-injection, pii-detector]\n"
    )
    # Far above what the run needs: a scenario that hangs fails the test instead of the suite.
    with trio.fail_after(120):
        async with serve_process("--config", str(config), "--port", "0", ready=b"health:") as (proc, out):
            gateway = "ws://" + re.search(rb"on ws://(\S+) ", out).group(1).decode()
            # `kt_trio conformance`, from another directory: it finds the checkout's conformance/.
            args = [sys.executable, "-m", "kt_trio", "conformance", "--gateway", gateway, "--mock-port", str(mock_port)]
            result = await trio.run_process(
                args, capture_stdout=True, capture_stderr=True, check=False, cwd=str(tmp_path)
            )
            proc.send_signal(signal.SIGTERM)
    lines = result.stdout.decode().splitlines()
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert lines[-1] == f"{len(SCENARIOS)} passed, 0 failed"
    assert all(line.startswith("PASS ") for line in lines[:-1])
