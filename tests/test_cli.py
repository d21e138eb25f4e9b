"""The command line as a user runs it: subprocesses, exit codes, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.conftest import serve_process

DATA = Path(__file__).parent / "data" / "configs"
LINE = re.compile(r"^[^:]+:\d+:\d+: [\w.\[\]<>-]+: .+$")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kt_trio", *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.iterdir() if p.suffix in (".yaml", ".toml")))
def test_validate_accepts_every_shared_example(name: str) -> None:
    result = run_cli("validate", str(DATA / name))
    assert result.returncode == 0, result.stderr
    assert "ok: pack" in result.stdout and result.stdout.count("\n") == 1


def test_validate_reports_every_error_with_its_position() -> None:
    result = run_cli("validate", str(DATA / "bad" / "many-errors.yaml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) > 5
    assert all(LINE.match(line) for line in lines), lines
    assert any("did you mean 'model'?" in line for line in lines)


def test_serve_refuses_a_bad_config_with_exit_2() -> None:
    result = run_cli("serve", "--config", str(DATA / "bad" / "many-errors.yaml"), "--port", "0")
    assert result.returncode == 2
    assert "many-errors.yaml:" in result.stderr


def test_serve_names_a_missing_secret_variable_never_a_value() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["OTHER_SECRET"] = "sk-should-never-be-printed"
    result = run_cli("serve", "--config", str(DATA / "realtime-gateway.yaml"), "--port", "0", env=env)
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert "sk-should-never-be-printed" not in result.stderr + result.stdout


async def test_demo_mode_round_trip_then_sigterm_drains_with_1001(tmp_path: Path) -> None:
    async with serve_process("--port", "0", ready=b"try it:", cwd=tmp_path) as (proc, out):
        url = re.search(rb"connect to:\s+(\S+)", out).group(1).decode()
        assert re.search(rb"python -m kt_trio chat --url", out)
        with trio.fail_after(30):
            async with open_websocket_url(url) as ws:
                assert json.loads(await ws.get_message())["type"] == "session.created"
                await ws.send_message(json.dumps({"type": "response.create"}))
                while json.loads(await ws.get_message())["type"] != "response.done":
                    pass
                proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await ws.get_message()
                assert info.value.reason.code == 1001
        with trio.fail_after(15):
            assert await proc.wait() == 0


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "examples").glob("*.yaml")), ids=str)
def test_every_example_config_validates(path: Path) -> None:
    result = run_cli("validate", str(path), env={**os.environ, "EVENTS_TOKEN": "t"})
    assert result.returncode == 0, result.stderr


PACKS = Path(__file__).parent.parent / "examples" / "packs"


def test_validate_takes_a_directory_of_packs() -> None:
    result = run_cli("validate", str(PACKS), env={**os.environ, "OPENAI_API_KEY": "sk-x"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(": ok: pack ")[1].split()[0] for line in lines] == ["customer-facing", "research"]


async def test_serve_runs_every_pack_of_a_directory(tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-never-printed"}
    async with serve_process("--config", str(PACKS), "--port", "0", ready=b"health:", cwd=tmp_path, env=env) as (
        proc,
        out,
    ):
        assert b"serving packs customer-facing, research on" in out
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            assert await proc.wait() == 0


def test_serve_refuses_one_pack_given_twice_naming_both_files() -> None:
    env = {**os.environ, "OPENAI_API_KEY": "sk-never-printed"}
    research = str(PACKS / "20-research.yaml")
    result = run_cli("serve", "--config", research, "--config", str(PACKS), "--port", "0", env=env)
    assert result.returncode == 2
    assert f"{research}:" in result.stderr and "already used by" in result.stderr
