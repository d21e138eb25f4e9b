"""Shared-state benchmark: `state.backend: redis` against `embedded`, and `--workers 2` against 1.

Everything runs on this machine: a private redis-server, the echo upstream (bench/echo_upstream.py),
the gateways under test (`python -m kt_trio serve`, one process each, empty policy chain, a per-IP
limit so every session takes a lease) and the load (asyncio `websockets` clients in this process).

Figures, each beside its baseline from the same run. The embedded and the redis gateway run side
by side and are measured in turn, `--rounds` times (3 by default); the median is printed, with
every round's figure beside it, because the machine is shared and noisy:
- Session opens/s, open-and-close from 8 concurrent clients, and the gateway's CPU ms per
  session (open and close), redis vs embedded; also "redis+listener": the same redis gateway
  while a `/ws/events` subscriber is connected to another instance, so that it publishes its
  events to Redis (without one it publishes nothing).
- Relay CPU µs per round trip (the gateway process's user+system CPU over the window, 20
  sessions ping-ponging), redis vs embedded.
- Redis commands per session (open and close together), and per relayed round trip in a window
  where no session opens, from Redis's own `INFO commandstats` (no MONITOR). Commands inside
  Lua scripts (ZADD, HMGET, TIME...) are counted beside the EVALSHA that ran them: the round
  trips are the EVALSHAs and PUBLISH pipelines.
- `--workers 2` vs 1 (redis backend): CPU µs per round trip summed over the workers.

    python bench/state.py            # about three minutes on 2 cores
    python bench/state.py --quick    # 3 s windows
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


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


async def open_cost(url: str, seconds: float, procs: list[psutil.Process]) -> tuple[float, float, int]:
    """Session opens/s from 8 clients, and the gateway's CPU ms per session (open and close)."""
    cpu0 = cpu_of(procs)
    rate, opened = await opens_per_sec(url, seconds, 8)
    return rate, (cpu_of(procs) - cpu0) / max(opened, 1) * 1e3, opened


async def listen(url: str, stop: asyncio.Event) -> None:
    """A `/ws/events` subscriber that reads (and drops) everything until `stop`."""
    async with connect(url, **CLIENT) as ws:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.2)


async def run(quick: bool, rounds: int) -> dict[str, Any]:
    window = 3.0 if quick else 6.0
    result: dict[str, Any] = {"window_secs": window, "rounds": rounds}
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
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(
                process([PY, str(BENCH_DIR / "echo_upstream.py"), "--port", str(upstream_port)], b"echo upstream")
            )
            redis_state = f"state:\n  backend: redis\n  redis_url: redis://127.0.0.1:{redis_port}/0\n"
            gateways: dict[str, tuple[str, psutil.Process]] = {}
            # "redis+listener": a second redis-backed instance, idle but for one `/ws/events`
            # subscriber, so the measured instance publishes every event to Redis.
            for name, state in (("embedded", ""), ("redis", redis_state), ("listener", redis_state)):
                cfg = scratch / f"{name}.yaml"
                state_dir = scratch / name
                state_dir.mkdir()
                cfg.write_text(CONFIG.format(state_dir=state_dir, upstream=upstream_port, state=state))
                port = free_port()
                argv = [PY, "-m", "kt_trio", "serve", "--config", str(cfg), "--port", str(port)]
                gw = await stack.enter_async_context(process(argv, b"health:"))
                gateways[name] = (f"ws://127.0.0.1:{port}", gw)
            path = "/v1/realtime?model=gpt-realtime"
            figures: dict[str, dict[str, list[float]]] = {}
            commands: dict[str, dict[str, int]] = {}
            opened_total: dict[str, int] = {}
            for round_no in range(rounds):
                for name in ("embedded", "redis", "redis+listener"):
                    base, gw = gateways["redis" if name == "redis+listener" else name]
                    url = base + path
                    stop = asyncio.Event()
                    listener = None
                    if name == "redis+listener":
                        listener = asyncio.create_task(listen(gateways["listener"][0] + "/ws/events", stop))
                        await asyncio.sleep(0.5)  # subscribed and listed before the window opens
                    if round_no == 0:
                        await opens_per_sec(url, 1.0, 4)  # warm-up
                    before = await commandstats(redis_port)
                    rate, cpu_open, opened = await open_cost(url, window, [gw])
                    await asyncio.sleep(0.5)  # the last closes' releases and event publishes land
                    cmds = delta(await commandstats(redis_port), before)
                    rt_rate, cpu_rt, trips = await round_trips(url, window, 20, [gw])
                    stop.set()
                    if listener is not None:
                        await listener
                    got = figures.setdefault(name, {})
                    for key, value in (
                        ("opens_per_sec", rate),
                        ("gateway_cpu_ms_per_session", cpu_open),
                        ("round_trips_per_sec", rt_rate),
                        ("relay_cpu_us_per_round_trip", cpu_rt),
                    ):
                        got.setdefault(key, []).append(value)
                    total = commands.setdefault(name, {})
                    for k, v in cmds.items():
                        total[k] = total.get(k, 0) + v
                    opened_total[name] = opened_total.get(name, 0) + opened
                    log(
                        f"round {round_no + 1} {name}: {rate:.0f} opens/s, {cpu_open:.2f} ms CPU/session, "
                        f"{cpu_rt:.1f} us CPU/round trip"
                    )
            for name, got in figures.items():
                entry: dict[str, Any] = {k: round(median(v), 2) for k, v in got.items()}
                entry["each_round"] = {k: [round(x, 2) for x in v] for k, v in got.items()}
                if name != "embedded":
                    entry["redis_commands_per_session"] = {
                        k: round(v / opened_total[name], 2) for k, v in sorted(commands[name].items())
                    }
                result[name] = entry
            emb = result["embedded"]
            for name in ("redis", "redis+listener"):
                result[f"{name}_vs_embedded"] = {
                    "opens_per_sec": round(result[name]["opens_per_sec"] / emb["opens_per_sec"], 2),
                    "gateway_cpu_per_session": round(
                        result[name]["gateway_cpu_ms_per_session"] / emb["gateway_cpu_ms_per_session"], 2
                    ),
                    "relay_cpu_per_round_trip": round(
                        result[name]["relay_cpu_us_per_round_trip"] / emb["relay_cpu_us_per_round_trip"], 3
                    ),
                }
            # Per relayed message: a relay window alone on the redis gateway, its sessions
            # already open, so every command counted is the relay's (or a lease heartbeat's).
            base, gw = gateways["redis"]
            conns = [await connect(base + path, **CLIENT) for _ in range(20)]
            before = await commandstats(redis_port)
            sent = 0
            stop_at = time.perf_counter() + window
            while time.perf_counter() < stop_at:
                await asyncio.gather(*(ws.send(MESSAGE) for ws in conns))
                await asyncio.gather(*(ws.recv() for ws in conns))
                sent += len(conns)
            relay_cmds = delta(await commandstats(redis_port), before)
            # The same sessions, as long, without messages: the timers' commands (lease renewals,
            # each instance's read of who listens), to tell them from the relay's.
            before = await commandstats(redis_port)
            await asyncio.sleep(window)
            idle_cmds = delta(await commandstats(redis_port), before)
            for ws in conns:
                await ws.close()
            result["redis_relay_window"] = {
                "round_trips": sent,
                "redis_commands_while_relaying": relay_cmds,
                "redis_commands_same_window_idle": idle_cmds,
                "redis_commands_per_round_trip_beyond_idle": round(
                    max(0, sum(relay_cmds.values()) - sum(idle_cmds.values())) / max(sent, 1), 4
                ),
            }
        for workers in (1, 2):
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(
                    process([PY, str(BENCH_DIR / "echo_upstream.py"), "--port", str(upstream_port)], b"echo upstream")
                )
                port = free_port()
                cfg = scratch / "redis.yaml"
                argv = [PY, "-m", "kt_trio", "serve", "--config", str(cfg), "--port", str(port)]
                argv += ["--workers", str(workers)] if workers > 1 else []
                sup = await stack.enter_async_context(process(argv, b"health:"))
                procs = workers_of(sup) if workers > 1 else [sup]
                url = f"ws://127.0.0.1:{port}{path}"
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
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure; the median is printed")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(json.dumps(asyncio.run(run(args.quick, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
