"""Config reload of a real `kt_trio serve` process: SIGHUP and `serve --watch` (issue 17 item 1)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from tests.conftest import config_yaml, serve_process
from tests.helpers import make_key
from tests.reload_helpers import (
    PHONE,
    event_stream,
    new_session_sends,
    next_of,
    read_until,
    sent_upstream,
    system_event,
)

pytestmark = pytest.mark.trio

READY = b"(health:"


def port_of(out: bytes) -> int:
    return int(out.split(b"ws://127.0.0.1:")[1].split(b" ")[0])


async def test_sighup_reloads_for_new_sessions_while_an_open_one_keeps_its_chain(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    with trio.fail_after(60):
        async with open_mock_upstream(MockBehaviour()) as mock:
            config.write_text(config_yaml(mock.url, chain=[], state_dir=tmp_path))
            async with serve_process("--config", str(config), "--port", "0", ready=READY) as (proc, out):
                port = port_of(out)
                url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                async with event_stream(port) as events, open_websocket_url(url) as old:
                    await next_of(old, "session.created")
                    config.write_text(config_yaml(mock.url, chain=["pii-detector"], state_dir=tmp_path))
                    proc.send_signal(signal.SIGHUP)
                    reloaded = await system_event(events, "config_reloaded")
                    assert reloaded["trigger"] == "SIGHUP"
                    async with open_websocket_url(url) as new:
                        await next_of(new, "session.created")
                        assert "[REDACTED:PHONE]" in await sent_upstream(new, mock, 1, f"call {PHONE}")
                    assert PHONE in await sent_upstream(old, mock, 0, f"call {PHONE}")
                proc.send_signal(signal.SIGTERM)
                assert await proc.wait() == 0


async def test_sighup_with_an_invalid_file_changes_nothing_and_logs_file_line_col(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    with trio.fail_after(60):
        async with open_mock_upstream(MockBehaviour()) as mock:
            good = config_yaml(mock.url, chain=["pii-detector"], state_dir=tmp_path)
            config.write_text(good)
            async with serve_process("--config", str(config), "--port", "0", ready=READY, stderr=subprocess.STDOUT) as (
                proc,
                out,
            ):
                port = port_of(out)
                seen = bytearray()
                async with event_stream(port) as events:
                    bad = good.replace("chain: [pii-detector]", "chain: [pii-detectr]")
                    config.write_text(bad)
                    row = next(i for i, text in enumerate(bad.splitlines(), 1) if "pii-detectr" in text)
                    col = bad.splitlines()[row - 1].index("pii-detectr") + 1
                    proc.send_signal(signal.SIGHUP)
                    rejected = await system_event(events, "config_rejected")
                    (error,) = rejected["errors"]
                    line = await read_until(proc, f"{config}:".encode(), seen)
                    assert error.startswith(f"{config}:{row}:{col}: policies.chain[0]: ")
                    assert "pii-detector" in error  # did-you-mean
                    assert line.endswith(error)
                    await read_until(proc, b"config reload rejected", seen)
                url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                assert "[REDACTED:PHONE]" in await new_session_sends(url, mock, 0, f"call {PHONE}")


async def test_watch_rejects_a_half_written_file_then_reloads_once_it_is_complete(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    with trio.fail_after(60):
        async with open_mock_upstream(MockBehaviour()) as mock:
            config.write_text(config_yaml(mock.url, chain=[], state_dir=tmp_path))
            async with serve_process("--config", str(config), "--port", "0", "--watch", ready=READY) as (_, out):
                port = port_of(out)
                new = config_yaml(mock.url, chain=["pii-detector"], state_dir=tmp_path)
                async with event_stream(port) as events:
                    config.write_text(new[: new.index("base_url:") + 12])  # cut mid-value, as an editor's write
                    rejected = await system_event(events, "config_rejected")
                    assert rejected["trigger"] == "watch"
                    config.write_text(new)
                    reloaded = await system_event(events, "config_reloaded")
                    assert reloaded["trigger"] == "watch"
                url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                assert "[REDACTED:PHONE]" in await new_session_sends(url, mock, 0, f"call {PHONE}")


async def test_kt_trio_reload_cli_reloads_or_reports_every_error(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    admin = make_key(tmp_path, "ops", scopes=["admin"])
    with trio.fail_after(60):
        async with open_mock_upstream(MockBehaviour()) as mock:
            good = config_yaml(mock.url, chain=[], state_dir=tmp_path)
            config.write_text(good)
            async with serve_process("--config", str(config), "--port", "0", ready=READY) as (_, out):
                port = port_of(out)

                async def reload(key: str) -> subprocess.CompletedProcess[bytes]:
                    argv = ["--url", f"http://127.0.0.1:{port}", "--key", key]
                    command = [sys.executable, "-m", "kt_trio", "reload", *argv]
                    return await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)

                config.write_text(good.replace("chain: []", "chain: [pii-detector]"))
                done = await reload(admin)
                assert (done.returncode, done.stdout) == (0, b"reloaded\n")
                config.write_text(good.replace("chain: []", "chain: [pii-detector, nope]"))
                refused = await reload(admin)
                assert refused.returncode == 2
                first = refused.stderr.decode().splitlines()[0]
                assert first.startswith(f"{config}:") and ": policies.chain[1]: " in first
                assert (await reload("kt_gk_not-a-key")).returncode == 1
                assert "[REDACTED:PHONE]" in await new_session_sends(
                    f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime", mock, 0, f"call {PHONE}"
                )
