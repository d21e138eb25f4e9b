"""Gateway processes sharing one Redis, as a cluster runs them: real processes, real sockets.

`open_cluster` starts N `python -m kt_trio serve` processes on their own ports with one config
(a mock provider from the test process, `state.backend: redis`) and yields them; `Instance.kill`
is kill -9. Nothing here sleeps blindly: every wait is a condition with a deadline.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

READY = b"health:"


def cluster_config(
    mock_url: str,
    redis_url: str,
    state_dir: Path,
    *,
    per_ip: int | None = None,
    lease_ttl_secs: float = 2.0,
    on_unavailable: str = "fail_closed",
    extra: str = "",
) -> str:
    per_ip_yaml = f"  rate_limit:\n    per_ip:\n      connections: {per_ip}\n" if per_ip else ""
    return (
        f"gateway:\n  state_dir: {state_dir}\n  shutdown_timeout_secs: 5\n"
        "providers:\n  targets:\n"
        f"    - id: mock\n      provider: openai\n      model: gpt-realtime\n      base_url: {mock_url}/v1/realtime\n"
        + per_ip_yaml
        + "  circuit_breaker:\n    failure_threshold: 5\n    recovery_timeout_secs: 60\n"
        + "policies:\n  chain: []\n"
        + f"state:\n  backend: redis\n  redis_url: {redis_url}\n  lease_ttl_secs: {lease_ttl_secs}\n"
        + f"  on_unavailable: {on_unavailable}\n"
        + extra
    )


class Instance:
    def __init__(self, proc: trio.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    def ws_url(self, path: str = "/v1/realtime?model=gpt-realtime") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        with trio.CancelScope(shield=True):
            await self.proc.wait()


@asynccontextmanager
async def start_instance(config: Path, *extra: str) -> AsyncIterator[Instance]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "kt_trio", "serve", "--config", str(config), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        out = b""
        with trio.fail_after(30):
            while READY not in out:
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, f"serve exited before it was ready: {out!r}"
                out += chunk
        port = int(re.search(rb"ws://127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
        yield Instance(proc, port)
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


@asynccontextmanager
async def open_cluster(config: Path, n: int = 2) -> AsyncIterator[list[Instance]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(start_instance(config)) for _ in range(n)]


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float, pause: float = 0.05) -> None:
    """Waits until `check()` holds; fails the test after `deadline` seconds."""
    with trio.fail_after(deadline):
        while not await check():
            await trio.sleep(pause)
