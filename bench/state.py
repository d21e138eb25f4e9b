"""Shared-state benchmark: `state.backend: redis` against `embedded`, and `--workers 2` against 1.

Everything runs on this machine: a private redis-server, the echo upstream (bench/echo_upstream.py),
the gateways under test (`python -m kt_trio serve`, one process each, empty policy chain, a per-IP
limit so every session takes a lease) and the load (asyncio `websockets` clients in this process).

Figures, each beside its baseline from the same run:
- Redis commands per session open (and close) and per relayed message, from Redis's own
  `INFO commandstats` (no MONITOR); round trips are fewer where commands share a pipeline.
- Session opens/s, sequential open-and-close from C concurrent clients, redis vs embedded.
- Relay CPU µs per round trip (the gateway process's user+system CPU over the window), redis vs embedded.
- `--workers 2` vs 1 (redis backend): CPU µs per round trip summed over the workers, and per worker.

    python bench/state.py            # about a minute on 2 cores
    python bench/state.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import connect

BENCH_DIR = Path(__file__).resolve().parent
PY = sys.executable
CLIENT: dict[str, Any] = {"compression": None, "ping_interval": None, "proxy": None}
MESSAGE = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 256})

CONFIG = """gateway:
  state_dir: {state_dir}
providers:
  targets:
    - id: echo
      provider: openai
      model: gpt-realtime
      base_url: ws://127.0.0.1:{upstream}/v1/realtime
  rate_limit:
    per_ip:
      connections: 100000
policies:
  chain: []
{state}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def redis_command(port: int, *args: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    writer.write(out.encode())
    head = await reader.readline()
    body = b""
    if head.startswith(b"$"):
        body = await reader.readexactly(int(head[1:]) + 2)
    writer.close()
    return (body or head).decode()


async def commandstats(port: int) -> dict[str, int]:
    text = await redis_command(port, "INFO", "commandstats")
    return {m[1]: int(m[2]) for m in re.finditer(r"cmdstat_([a-z|]+):calls=(\d+)", text)}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    out = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    out.pop("info", None)
    return out


@contextlib.asynccontextmanager
async def process(argv: list[str], ready: bytes, env: dict[str, str] | None = None) -> AsyncIterator[psutil.Process]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    seen = b""
    deadline = time.monotonic() + 60
    while ready not in seen:
        chunk = await loop.run_in_executor(None, proc.stdout.readline)
        if not chunk or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{argv[:4]} did not start: {seen!r}")
        seen += chunk
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await loop.run_in_executor(None, proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()


def cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


async def opens_per_sec(url: str, seconds: float, concurrency: int) -> tuple[float, int]:
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            async with connect(url, **CLIENT):
                pass
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done / (time.perf_counter() - start), done


async def round_trips(url: str, seconds: float, sessions: int, procs: list[psutil.Process]) -> tuple[float, float, int]:
    """Round trips/s and gateway CPU µs per round trip, `sessions` connections ping-ponging."""
    conns = [await connect(url, **CLIENT) for _ in range(sessions)]
    count = 0
    stop = time.perf_counter() + seconds

    async def pump(ws: Any) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await ws.send(MESSAGE)
            await ws.recv()
            count += 1

    cpu0, t0 = cpu_of(procs), time.perf_counter()
    await asyncio.gather(*(pump(ws) for ws in conns))
    cpu1, t1 = cpu_of(procs), time.perf_counter()
    for ws in conns:
        await ws.close()
    return count / (t1 - t0), (cpu1 - cpu0) / max(count, 1) * 1e6, count


def workers_of(supervisor: psutil.Process) -> list[psutil.Process]:
    return supervisor.children()


async def run(quick: bool) -> dict[str, Any]:
    window = 3.0 if quick else 8.0
    result: dict[str, Any] = {"window_secs": window}
    scratch = Path(tempfile.mkdtemp(prefix="kt_trio_bench_state_"))
    redis_port, upstream_port = free_port(), free_port()
    redis_argv = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(scratch)]
    redis_argv += ["--save", "", "--appendonly", "no"]
    redis = subprocess.Popen(redis_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                if "PONG" in await redis_command(redis_port, "PING"):
                    break
            await asyncio.sleep(0.05)
        async with process([PY, str(BENCH_DIR / "echo_upstream.py"), "--port", str(upstream_port)], b"echo upstream"):
            redis_state = f"state:\n  backend: redis\n  redis_url: redis://127.0.0.1:{redis_port}/0\n"
            for name, state in (("embedded", ""), ("redis", redis_state)):
                cfg = scratch / f"{name}.yaml"
                state_dir = scratch / name
                state_dir.mkdir()
                cfg.write_text(CONFIG.format(state_dir=state_dir, upstream=upstream_port, state=state))
                port = free_port()
                argv = [PY, "-m", "kt_trio", "serve", "--config", str(cfg), "--port", str(port)]
                async with process(argv, b"health:") as gw:
                    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                    await opens_per_sec(url, 1.0, 4)  # warm-up
                    before = await commandstats(redis_port)
                    rate, opened = await opens_per_sec(url, window, 8)
                    await asyncio.sleep(1.0)  # the last closes' releases and event publishes land
                    open_cmds = delta(await commandstats(redis_port), before)
                    before = await commandstats(redis_port)
                    rt_rate, cpu_rt, trips = await round_trips(url, window, 20, [gw])
                    relay_cmds = delta(await commandstats(redis_port), before)
                    result[name] = {
                        "opens_per_sec": round(rate),
                        "sessions_opened": opened,
                        "round_trips_per_sec": round(rt_rate),
                        "relay_cpu_us_per_round_trip": round(cpu_rt, 1),
                        "round_trips": trips,
                    }
                    if name == "redis":
                        result[name]["redis_commands_per_session"] = {
                            k: round(v / opened, 2) for k, v in sorted(open_cmds.items())
                        }
                        # The relay window opens 20 sessions too: per message, what is left is
                        # (commands - those sessions' open/close commands) / messages.
                        per_session = sum(open_cmds.values()) / opened
                        relay_only = max(0.0, sum(relay_cmds.values()) - 20 * per_session)
                        result[name]["redis_commands_per_relayed_message"] = round(relay_only / max(trips, 1), 4)
                        result[name]["redis_commands_in_relay_window"] = relay_cmds
            result["opens_ratio_redis_vs_embedded"] = round(
                result["redis"]["opens_per_sec"] / result["embedded"]["opens_per_sec"], 2
            )
            result["relay_cpu_ratio_redis_vs_embedded"] = round(
                result["redis"]["relay_cpu_us_per_round_trip"] / result["embedded"]["relay_cpu_us_per_round_trip"], 3
            )
            for workers in (1, 2):
                port = free_port()
                cfg = scratch / "redis.yaml"
                argv = [PY, "-m", "kt_trio", "serve", "--config", str(cfg), "--port", str(port)]
                argv += ["--workers", str(workers)] if workers > 1 else []
                async with process(argv, b"health:") as sup:
                    procs = workers_of(sup) if workers > 1 else [sup]
                    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime"
                    await round_trips(url, 1.0, 20, procs)  # warm-up
                    rt_rate, cpu_rt, trips = await round_trips(url, window, 40, procs)
                    result[f"workers_{workers}"] = {
                        "round_trips_per_sec": round(rt_rate),
                        "cpu_us_per_round_trip_all_workers": round(cpu_rt, 1),
                        "round_trips": trips,
                    }
    finally:
        redis.kill()
        redis.wait()
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(json.dumps(asyncio.run(run(args.quick)), indent=2))


if __name__ == "__main__":
    main()
