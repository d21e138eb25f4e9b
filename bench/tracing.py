"""Tracing on vs off (issue 18): the relay benchmark's load (bench/relay.py) through the gateway
with the default chain, with and without OpenTelemetry traces exported, in one run.

    off      `python -m kt_trio serve`, default chain, no `observability` (tracing off)
    on       the same, with `observability.otlp_endpoint` pointing at bench/otlp_sink.py (its
             own process: an OTLP/HTTP receiver that decodes and counts what it gets)
    before   (with --before DIR) the same config served by the kt_trio package in DIR: the tree
             before tracing existed, to show what "off" costs against not having the feature

Per path: relay CPU µs per round trip and round trips/s in the throughput phase (50 connections
x 8 in flight, ~300-byte events; the paths in turn, `--rounds` rounds, the median round
reported), and relay CPU per session opened (500 opens, 10 at a time: a session's span and its
dial span are made there, so that is where tracing's cost shows; no span is made per message).

    python bench/tracing.py                       # 3 rounds, about 60 s on 2 cores
    python bench/tracing.py --before /tmp/before  # with a tree exported by `git archive`
    python bench/tracing.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay import (
    BENCH_DIR,
    DEFAULT_CHAIN,
    GATEWAY_CONFIG,
    PY,
    Bench,
    Server,
    Settings,
    free_port,
    log,
    raise_nofile,
)

QUERY = "/v1/realtime?model=bench&bench={}"
ON_LIMIT = 1.10  # issue 18: tracing on costs at most 10 % more CPU per round trip


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _serve_argv(config: Path, port: int, tree: Path | None) -> list[str]:
    serve = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    if tree is None:
        return [PY, "-m", "kt_trio", *serve]
    # Another tree's package: first on sys.path, then run as `python -m kt_trio` would.
    code = f"import sys, runpy; sys.path.insert(0, {str(tree)!r}); runpy.run_module('kt_trio', run_name='__main__')"
    return [PY, "-c", code, *serve]


async def run(settings: Settings, before: Path | None) -> dict[str, Any]:
    started = time.monotonic()
    raise_nofile()
    logdir = Path(tempfile.mkdtemp(prefix="kt_trio_tracing_bench_"))
    servers: dict[str, Server] = {}
    urls: dict[str, str] = {}
    sink_seen: dict[str, Any] = {}
    try:
        up_port, sink_port = free_port(), free_port()
        servers["upstream"] = Server(
            "upstream", [PY, str(BENCH_DIR / "echo_upstream.py"), "--port", str(up_port)], logdir
        )
        servers["sink"] = Server("sink", [PY, str(BENCH_DIR / "otlp_sink.py"), "--port", str(sink_port)], logdir)
        await servers["upstream"].wait_port(up_port)
        await servers["sink"].wait_port(sink_port)
        observability = f"observability:\n  otlp_endpoint: http://127.0.0.1:{sink_port}\n"
        paths: list[tuple[str, str, Path | None]] = [("off", "", None), ("on", observability, None)]
        if before is not None:
            paths.append(("before", "", before))
        for name, extra, tree in paths:
            port = free_port()
            cfg = logdir / f"{name}.yaml"
            state = logdir / f"{name}-state"
            cfg.write_text(
                GATEWAY_CONFIG.format(upstream_port=up_port, chain=DEFAULT_CHAIN, policy=extra, state_dir=state)
            )
            servers[name] = Server(name, _serve_argv(cfg, port, tree), logdir)
            await servers[name].wait_port(port)
            urls[name] = f"ws://127.0.0.1:{port}" + QUERY.format(name)
        bench = Bench(settings, servers, urls)
        for path in urls:
            log(f"warm-up, session opens: {path}")
            await asyncio.wait_for(bench.warm(path), 300)
            await asyncio.wait_for(bench.open_rate(path), 300)
        for k in range(settings.rounds):
            for path in urls:
                log(f"throughput round {k + 1}: {path}")
                await asyncio.wait_for(bench.throughput(path), 300)
        rounds = {p: list(bench.results[p].get("_rounds", [])) for p in urls}
        for path in urls:
            bench.finish_throughput(path)
    finally:
        for name in ("before", "on", "off", "sink", "upstream"):
            if name in servers:
                servers[name].stop()
        with contextlib.suppress(Exception):
            sink_seen = json.loads(servers["sink"].log_path.read_text().strip().splitlines()[-1])
    out: dict[str, Any] = {"paths": {}, "sink": sink_seen, "elapsed_s": time.monotonic() - started}
    for path, r in bench.results.items():
        per_round = [rnd["cpu_s"]["relay"] / max(1, len(rnd["rtts"])) * 1e6 for rnd in rounds[path]]
        out["paths"][path] = {
            "cpu_us_per_rt_median": _median(per_round),
            "cpu_us_per_rt_rounds": per_round,
            "rt_per_s_median": _median([len(rnd["rtts"]) / settings.duration for rnd in rounds[path]]),
            "open_cpu_us": r.get("open_cpu_us"),
            "opens_per_s": r.get("opens_per_s"),
            "errors": dict(r.get("errors", {})),
            "returncode": servers[path].returncode,
        }
    shutil.rmtree(logdir, ignore_errors=True)
    return out


def report(res: dict[str, Any]) -> str:
    p = res["paths"]
    lines = [
        f"tracing on vs off, default chain, {res['elapsed_s']:.0f} s",
        "| path | round trips/s (median) | relay CPU µs/rt (median) | per round µs/rt "
        "| CPU µs per session open | sessions/s |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, r in p.items():
        rounds = "/".join(f"{x:.1f}" for x in r["cpu_us_per_rt_rounds"])
        lines.append(
            f"| {name} | {r['rt_per_s_median']:,.0f} | {r['cpu_us_per_rt_median']:.1f} | {rounds} | "
            f"{r['open_cpu_us'] or 0:.0f} | {r['opens_per_s'] or 0:,.0f} |"
        )
    on, off = p["on"]["cpu_us_per_rt_median"], p["off"]["cpu_us_per_rt_median"]
    x = on / off
    lines.append(
        f"on / off CPU per round trip: {x:.3f}× (goal ≤ {ON_LIMIT:.2f}×: {'met' if x <= ON_LIMIT else 'NOT met'})"
    )
    lines.append(f"on / off CPU per session open: {p['on']['open_cpu_us'] / p['off']['open_cpu_us']:.2f}×")
    if "before" in p:
        b = p["before"]["cpu_us_per_rt_median"]
        lines.append(f"off / before CPU per round trip: {off / b:.3f}×")
        lines.append(f"off / before CPU per session open: {p['off']['open_cpu_us'] / p['before']['open_cpu_us']:.2f}×")
    lines.append(f"OTLP sink received: {res['sink']}")
    problems = [f"{n}: {r['errors']}" for n, r in p.items() if r["errors"]]
    problems += [f"{n} exited {r['returncode']}" for n, r in p.items() if r["returncode"] != 0]
    lines.append("PROBLEMS: " + "; ".join(problems) if problems else "no errors; every gateway exited 0")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke run")
    parser.add_argument("--rounds", type=int, help="throughput rounds per path (default 3)")
    parser.add_argument("--before", type=Path, help="a tree whose kt_trio package serves the 'before' path")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    settings = Settings.quick() if args.quick else Settings()
    if args.rounds:
        settings.rounds = args.rounds
    res = asyncio.run(run(settings, args.before))
    print(json.dumps(res, indent=2) if args.json else report(res))


if __name__ == "__main__":
    main()
