"""Shared fixtures: a real gateway on 127.0.0.1 in front of the conformance mock provider."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from kt_trio.config import load_config_text
from kt_trio.mocks.realtime import MockBehaviour, open_mock_upstream
from kt_trio.server.gateway import Gateway
from kt_trio.testing import RunningGateway, serve_gateway
from tests.postgres_server import pg_dsn, postgres_server  # noqa: F401  (fixtures: a private PostgreSQL)


def config_yaml(
    mock_url: str,
    *,
    websocket: dict[str, Any] | None = None,
    chain: list[str] | None = None,
    target_extra: str = "",
    providers_extra: str = "",
    extra: str = "",
    state_dir: Path | None = None,
    gateway_extra: str = "",
) -> str:
    ws = "".join(f"    {k}: {v}\n" for k, v in (websocket or {}).items())
    chain_yaml = "[]" if not chain else "[" + ", ".join(chain) + "]"
    gateway = (
        (f"  state_dir: {state_dir}\n" if state_dir else "") + ("  websocket:\n" + ws if ws else "") + gateway_extra
    )
    return (
        ("gateway:\n" + gateway if gateway else "")
        + "providers:\n  targets:\n"
        + f"    - id: mock\n      provider: openai\n      model: gpt-realtime\n      base_url: {mock_url}/v1/realtime\n"
        + target_extra
        + "    - id: mock-responses\n      provider: openai\n      model: gpt-4.1-mini\n"
        + f"      base_url: {mock_url}/v1/responses\n"
        + providers_extra
        + f"policies:\n  chain: {chain_yaml}\n"
        + extra
    )


@asynccontextmanager
async def running(
    behaviour: MockBehaviour | None = None, *, secrets: dict[str, str] | None = None, **kw: Any
) -> AsyncIterator[RunningGateway]:
    """A gateway whose targets point at a fresh mock provider; `kw` goes to `config_yaml`.

    The whole test body runs under a deadline, so a missing event fails the test instead of
    hanging the suite.
    """
    with trio.fail_after(TEST_DEADLINE):
        async with _running(behaviour, secrets=secrets, **kw) as gw:
            yield gw


# Far above what any test here needs (the slowest waits ~2 s of configured timeouts).
TEST_DEADLINE = 60


@asynccontextmanager
async def _running(
    behaviour: MockBehaviour | None, *, secrets: dict[str, str] | None, **kw: Any
) -> AsyncIterator[RunningGateway]:
    with tempfile.TemporaryDirectory(prefix="kt_trio_state_") as scratch:
        # Each gateway gets its own state dir (keys.db, audit.db) unless the test names one.
        kw.setdefault("state_dir", Path(scratch))
        async with _with_mock(behaviour, secrets=secrets, **kw) as gw:
            yield gw


@asynccontextmanager
async def _with_mock(
    behaviour: MockBehaviour | None,
    *,
    secrets: dict[str, str] | None,
    packs: Sequence[str] = (),
    **kw: Any,
) -> AsyncIterator[RunningGateway]:
    """`packs`: YAML texts of more packs after the default one; `{mock}` in them is the mock's URL."""
    async with open_mock_upstream(behaviour or MockBehaviour()) as mock:
        config = load_config_text(config_yaml(mock.url, **kw), "test.yaml")
        more = [
            (load_config_text(text.replace("{mock}", mock.url), f"pack{i}.yaml"), {}) for i, text in enumerate(packs, 1)
        ]
        async with serve_gateway(Gateway(config, secrets=secrets, more_packs=more), mock=mock) as gw:
            yield gw


@asynccontextmanager
async def serve_process(
    *args: str,
    ready: bytes,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    command: Sequence[str] = ("serve",),
    stderr: int = subprocess.DEVNULL,
) -> AsyncIterator[tuple[trio.Process, bytes]]:
    """`python -m kt_trio serve ARGS` (or another `command`, e.g. `gateway run`) as a user runs
    it; yields once its stdout shows `ready`.

    Killed on the way out if the test has not ended it (the test owns signals and exit codes).
    `stderr=subprocess.STDOUT` puts the log lines in the output the test reads.
    """
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "kt_trio", *command, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=cwd,
        env=env,
    )
    try:
        assert proc.stdout is not None
        out = b""
        with trio.fail_after(20):
            while ready not in out:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, f"serve exited before printing {ready!r}"
                out += chunk
        yield proc, out
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):  # reaped even when the test's deadline fired
            await proc.wait()


def count_tasks() -> int:
    """Every task alive in this trio run (a leak shows as a count that does not come back)."""
    stack = [trio.lowlevel.current_root_task()]
    n = 0
    while stack:
        task = stack.pop()
        n += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return n


Predicate = Callable[[int], bool]
