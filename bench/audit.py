"""Audit benchmark (issue 5): messages per second through the gateway with audit off, `batch` and `strict`.

Three kt_trio gateways (`python -m kt_trio serve`), each with its own fresh `gateway.state_dir`, in
front of the same echo upstream (bench/echo_upstream.py):

  off     policies.chain: []
  batch   chain: [audit-logger], log_all_access: true, durability: batch
  strict  chain: [audit-logger], log_all_access: true, durability: strict

The load is the relay benchmark's (bench/relay.py `worker_main`: closed loop, every reply compared
with the message sent, ~300-byte `conversation.item.create` events) from worker processes, with
the sends and receives counted on the client side. The configs are taken in turn, round by round,
so that all three see the same machine. Per config: round trips/s, RTT p50/p99, gateway CPU µs
per round trip (the gateway process's CPU clock, all threads, so the audit writer's thread and
SQLite are included), ratios vs audit off, and after the gateway exited: the audit database's
rows, which must equal every message the clients sent and received plus one start and one end
record per session (a mismatch is reported as an error), and `kt_trio audit verify`.

    python bench/audit.py              # default run, about 70 s on 2 cores
    python bench/audit.py --quick      # smoke run
    python bench/audit.py --json
    python bench/audit.py --stores     # audit rows/s into SQLite vs PostgreSQL (bench/audit_stores.py)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import relay
from bench.relay import (
    BENCH_DIR,
    GATEWAY_CONFIG,
    PY,
    REPO,
    Server,
    _busy,
    free_port,
    log,
    make_events,
    pct,
    raise_nofile,
)

CONFIGS = ("off", "batch", "strict")
AUDIT_POLICY = """\
policies:
  chain: [audit-logger]
policy:
  audit-logger:
    log_all_access: true
    durability: {durability}
"""
PHASE_TIMEOUT = 120.0
SLOW_STOP_SECS = 2.0


@dataclass
class Settings:
    conns: int = 20
    inflight: int = 4
    workers: int = 2
    rounds: int = 3
    warmup: float = 1.0
    duration: float = 4.0

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1, warmup=0.5, duration=2.0)


def gateway_config(name: str, upstream_port: int, state_dir: Path) -> str:
    """The relay benchmark's gateway config, with its own state_dir and, unless `off`, the audit logger."""
    text = GATEWAY_CONFIG.format(upstream_port=upstream_port)
    head, chain = "gateway:\n", "policies:\n  chain: []\n"
    assert text.startswith(head) and text.endswith(chain), "bench/relay.py GATEWAY_CONFIG changed shape"
    text = head + f"  state_dir: {json.dumps(str(state_dir))}\n" + text[len(head) :]
    if name != "off":
        text = text[: -len(chain)] + AUDIT_POLICY.format(durability=name)
    return text


# --------------------------------------------------------------------------- load worker process


async def counting_worker(cfg: dict[str, Any]) -> None:
    """bench/relay.py's load worker, with every message its connections send and receive counted.

    Its connections come from `relay.connect`, replaced here (in this worker process only) by one
    that wraps each connection's `send` and `recv`. Prints relay's result line, then one line
    `{"counts": {...}}`."""
    counts: Counter[str] = Counter()
    real_connect = relay.connect

    async def connect(url: str, **kwargs: Any) -> Any:
        ws = await real_connect(url, **kwargs)
        counts["connections"] += 1
        send, recv = ws.send, ws.recv

        async def counted_send(message: Any, *args: Any, **kw: Any) -> None:
            await send(message, *args, **kw)
            counts["sent"] += 1

        async def counted_recv(*args: Any, **kw: Any) -> Any:
            message = await recv(*args, **kw)
            counts["received"] += 1
            return message

        ws.send, ws.recv = counted_send, counted_recv
        return ws

    relay.connect = connect  # type: ignore[assignment]
    await relay.worker_main(cfg)
    print(json.dumps({"counts": dict(counts)}), flush=True)


# --------------------------------------------------------------------------- the run


class AuditBench:
    def __init__(self, settings: Settings, servers: dict[str, Server], urls: dict[str, str]) -> None:
        self.s = settings
        self.servers = servers
        self.urls = urls
        self.results: dict[str, dict[str, Any]] = {
            name: {"errors": Counter(), "counts": Counter(), "rounds": []} for name in urls
        }

    async def throughput(self, name: str) -> None:
        """One round on one config: workers connect, load for warm-up + duration, drain, close."""
        r, s = self.results[name], self.s
        gateway, upstream = self.servers[name], self.servers["upstream"]
        per = [s.conns // s.workers + (1 if k < s.conns % s.workers else 0) for k in range(s.workers)]
        procs: list[asyncio.subprocess.Process] = []
        try:
            for n in per:
                cfg = {"url": self.urls[name], "conns": n, "inflight": s.inflight, "warmup": s.warmup}
                cfg["duration"] = s.duration
                procs.append(
                    await asyncio.create_subprocess_exec(
                        PY,
                        str(Path(__file__).resolve()),
                        "_worker",
                        json.dumps(cfg),
                        cwd=REPO,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        start_new_session=True,
                    )
                )
            for p in procs:
                assert p.stdout is not None and p.stderr is not None
                line = await asyncio.wait_for(p.stdout.readline(), 60)
                if line.strip() != b"ready":
                    err = await p.stderr.read()
                    raise RuntimeError(f"load worker failed to start on {name}: {line!r} {err.decode()[-2000:]}")
            t0 = time.monotonic() + 0.2
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(f"{t0!r}\n".encode())
                await p.stdin.drain()
            await asyncio.sleep(max(0.0, t0 + s.warmup - time.monotonic()))
            c0 = (gateway.cpu(), upstream.cpu())
            m0, w0 = psutil.cpu_times(), time.monotonic()
            await asyncio.sleep(max(0.0, t0 + s.warmup + s.duration - time.monotonic()))
            c1 = (gateway.cpu(), upstream.cpu())
            m1, wall = psutil.cpu_times(), time.monotonic() - w0
            outs = [await asyncio.wait_for(p.communicate(), s.warmup + s.duration + 60) for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                    await p.wait()
        rtts: list[float] = []
        worker_pct: list[float] = []
        for p, (out, err) in zip(procs, outs, strict=True):
            lines = out.decode().strip().splitlines()
            if p.returncode != 0 or len(lines) < 2:
                raise RuntimeError(f"load worker on {name} exited {p.returncode}: {err.decode()[-2000:]}")
            res, counts = json.loads(lines[-2]), json.loads(lines[-1])["counts"]
            rtts.extend(res["rtts"])
            r["errors"].update(res["errors"])
            r["counts"].update(counts)
            worker_pct.append(res["cpu_s"] / res["wall_s"] * 100 if res["wall_s"] else float("nan"))
        r["rounds"].append(
            {
                "rtts": rtts,
                "gateway_cpu_s": c1[0] - c0[0],
                "upstream_cpu_s": c1[1] - c0[1],
                "worker_pct": worker_pct,
                "machine_busy_s": _busy(m1) - _busy(m0),
                "wall_s": wall,
            }
        )

    def finish(self, name: str) -> None:
        r = self.results[name]
        rounds = r.pop("rounds")
        if not rounds:
            return
        rtts = sorted(x for rnd in rounds for x in rnd["rtts"])
        n, wall = len(rtts), sum(rnd["wall_s"] for rnd in rounds)
        r["round_trips"] = n
        r["rt_per_s"] = n / (self.s.duration * len(rounds))
        r["msgs_per_s"] = 2 * r["rt_per_s"]
        r["rtt_p50_ms"] = pct(rtts, 0.50) * 1e3
        r["rtt_p99_ms"] = pct(rtts, 0.99) * 1e3
        r["rt_per_s_rounds"] = [len(rnd["rtts"]) / self.s.duration for rnd in rounds]
        if n:
            r["cpu_us_per_rt"] = sum(rnd["gateway_cpu_s"] for rnd in rounds) / n * 1e6
            r["cpu_us_per_rt_rounds"] = [rnd["gateway_cpu_s"] / max(1, len(rnd["rtts"])) * 1e6 for rnd in rounds]
        r["cpu_pct"] = {
            "gateway": sum(rnd["gateway_cpu_s"] for rnd in rounds) / wall * 100,
            "upstream": sum(rnd["upstream_cpu_s"] for rnd in rounds) / wall * 100,
        }
        for k in range(len(rounds[0]["worker_pct"])):
            r["cpu_pct"][f"load worker {k + 1}"] = sum(rnd["worker_pct"][k] for rnd in rounds) / len(rounds)
        r["machine_busy_pct"] = sum(rnd["machine_busy_s"] for rnd in rounds) / wall * 100
        # Busy time outside the processes above: this process, the kernel (fsync, writeback), other load.
        r["machine_other_pct"] = max(0.0, r["machine_busy_pct"] - sum(r["cpu_pct"].values()))


def read_audit(state_dir: Path) -> dict[str, Any] | None:
    """Rows per kind and the message totals the session end records claim (None: no database)."""
    db = state_dir / "audit.db"
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        kinds = dict(conn.execute("SELECT kind, count(*) FROM audit_records GROUP BY kind").fetchall())
        claimed = Counter()
        for (data,) in conn.execute("SELECT data FROM audit_records WHERE kind = 'session_end'"):
            d = json.loads(data)
            claimed["messages_in"] += d.get("messages_in", 0)
            claimed["messages_out"] += d.get("messages_out", 0)
        directions = dict(
            conn.execute(
                "SELECT json_extract(data, '$.direction'), count(*) FROM audit_records"
                " WHERE kind = 'message' GROUP BY 1"
            ).fetchall()
        )
    finally:
        conn.close()
    size = sum(f.stat().st_size for f in state_dir.iterdir() if f.name.startswith("audit.db"))
    return {
        "rows": sum(kinds.values()),
        "kinds": kinds,
        "directions": directions,
        "session_end_claims": dict(claimed),
        "bytes": size,
    }


def verify_audit(state_dir: Path) -> tuple[int, str]:
    p = subprocess.run(
        [PY, "-m", "kt_trio", "audit", "verify", "--state-dir", str(state_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, (p.stdout + p.stderr).strip()


def check_audit(name: str, r: dict[str, Any], state_dir: Path, problems: list[str]) -> None:
    """After the gateway exited: the audit database against what the clients sent and received."""
    c = r["counts"]
    sessions, sent, received = c.get("connections", 0), c.get("sent", 0), c.get("received", 0)
    audit = read_audit(state_dir)
    r["audit"] = audit
    if name == "off":
        if audit is not None:
            problems.append(f"off: an audit database was created in {state_dir} with audit off")
        return
    expected = sent + received + 2 * sessions
    r["audit_expected"] = expected
    if audit is None:
        problems.append(f"{name}: no audit database in {state_dir}")
        return
    rows, kinds = audit["rows"], audit["kinds"]
    if r.get("rows_live") != expected:
        problems.append(
            f"{name}: 1 s after the load, before shutdown, the audit db held {r.get('rows_live')} rows "
            f"(expected {expected:,}; {rows:,} after shutdown)"
        )
    if rows != expected:
        problems.append(
            f"{name}: audit rows {rows:,} != expected {expected:,} "
            f"({sent:,} sent + {received:,} received + 2 x {sessions} sessions); by kind: {kinds}"
        )
    want = {"session_start": sessions, "session_end": sessions, "message": sent + received}
    for kind, n in want.items():
        if kinds.get(kind, 0) != n:
            problems.append(f"{name}: {kinds.get(kind, 0):,} {kind} records, expected {n:,}")
    want_dir = {"input": sent, "output": received}
    for direction, n in want_dir.items():
        if audit["directions"].get(direction, 0) != n:
            problems.append(
                f"{name}: {audit['directions'].get(direction, 0):,} {direction} message records, expected {n:,}"
            )
    code, text = verify_audit(state_dir)
    r["verify"] = text
    if code != 0:
        problems.append(f"{name}: `kt_trio audit verify` exited {code}: {text[-300:]}")


def log_problems(name: str, server: Server) -> list[str]:
    out = []
    if server.returncode != 0:
        out.append(f"{name} process exited {server.returncode} after SIGINT (expected 0)")
    bad = [ln for ln in server.log_text().splitlines() if re.search(r"Traceback|ERROR|CRITICAL|Exception", ln)]
    if bad:
        out.append(f"{name} log has {len(bad)} error lines, first: {bad[0][:300]} (log: {server.log_path})")
    return out


async def run(settings: Settings, state_root: Path | None) -> dict[str, Any]:
    started = time.monotonic()
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="kt_trio_audit_bench_", dir=state_root))
    servers: dict[str, Server] = {}
    urls: dict[str, str] = {}
    state_dirs: dict[str, Path] = {}
    problems: list[str] = []
    bench: AuditBench | None = None
    keep = False
    try:
        up_port = free_port()
        servers["upstream"] = Server(
            "upstream", [PY, str(BENCH_DIR / "echo_upstream.py"), "--port", str(up_port)], workdir
        )
        await servers["upstream"].wait_port(up_port)
        for name in CONFIGS:
            port = free_port()
            state_dirs[name] = workdir / f"state-{name}"
            cfg = workdir / f"gateway-{name}.yaml"
            cfg.write_text(gateway_config(name, up_port, state_dirs[name]))
            argv = [PY, "-m", "kt_trio", "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
            servers[name] = Server(name, argv, workdir)
            await servers[name].wait_port(port)
            urls[name] = f"ws://127.0.0.1:{port}/v1/realtime?model=bench&bench={name}"
        bench = AuditBench(settings, servers, urls)
        for k in range(settings.rounds):
            for name in CONFIGS:
                log(f"round {k + 1}/{settings.rounds}: {name}")
                try:
                    await asyncio.wait_for(bench.throughput(name), PHASE_TIMEOUT)
                except Exception as exc:
                    problems.append(f"{name}: round {k + 1} failed: {type(exc).__name__}: {exc}")
        # Batch durability commits within flush_interval_ms (50): a second later, with every session
        # closed, the running gateways' databases must already hold every record.
        await asyncio.sleep(1.0)
        for name in CONFIGS:
            with contextlib.suppress(sqlite3.Error):
                live = read_audit(state_dirs[name])
                if live is not None:
                    bench.results[name]["rows_live"] = live["rows"]
    except (asyncio.CancelledError, KeyboardInterrupt):
        keep = True
        raise
    finally:
        # The gateways first (together: each may take its shutdown grace), then the upstream.
        gateways = [servers[name] for name in CONFIGS if name in servers]
        with ThreadPoolExecutor(max(1, len(gateways))) as pool:
            list(pool.map(Server.stop, gateways))
        if "upstream" in servers:
            servers["upstream"].stop()
        if sys.exc_info()[0] is not None:
            log(f"logs and state kept in {workdir}")
            keep = True
    assert bench is not None  # set: a failure before the rounds propagates from the try block
    results = bench.results
    for name in CONFIGS:
        bench.finish(name)
        check_audit(name, results[name], state_dirs[name], problems)
    for name, server in servers.items():
        problems.extend(log_problems(name, server))
    upstream_seen: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        upstream_seen = json.loads(servers["upstream"].log_path.read_text().strip().splitlines()[-1])
    for key, count in upstream_seen.get("close_codes", {}).items():
        label, _, code = key.partition(":")
        if code != "1000":
            problems.append(f"upstream received close code {code} on {count} {label} connections (expected 1000)")
    for name, r in results.items():
        for err, count in r.pop("errors").items():
            problems.append(f"{name}: {err} (x{count})")
        r["counts"] = dict(r["counts"])
    # Not an error (nothing is lost), but a gateway with no session open should exit at once.
    warnings = [
        f"{name} took {server.stop_s:.1f} s to exit after SIGINT (no session open; expected well under 1 s)"
        for name, server in servers.items()
        if server.stop_s > SLOW_STOP_SECS
    ]
    off = results["off"]
    for name in ("batch", "strict"):
        r = results[name]
        r["ratios"] = {}
        for key in ("rt_per_s", "cpu_us_per_rt", "rtt_p50_ms", "rtt_p99_ms"):
            if off.get(key) and r.get(key):
                r["ratios"][key] = r[key] / off[key]
        if off.get("cpu_us_per_rt") and r.get("cpu_us_per_rt"):
            # Two message records per round trip (one each way): the audit's gateway CPU per record.
            r["audit_cpu_us_per_record"] = (r["cpu_us_per_rt"] - off["cpu_us_per_rt"]) / 2
    import trio
    import websockets

    disk = psutil.disk_partitions(all=True)
    mount = max(
        (p for p in disk if str(workdir).startswith(p.mountpoint)), key=lambda p: len(p.mountpoint), default=None
    )
    res: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "websockets": websockets.__version__,
            "trio": trio.__version__,
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "state_fs": f"{mount.fstype} on {mount.device} ({mount.mountpoint})" if mount else "?",
        },
        "settings": asdict(settings),
        "event_bytes": len(make_events(1)[0]),
        "configs": results,
        "upstream_seen": upstream_seen,
        "stop_s": {name: round(server.stop_s, 3) for name, server in servers.items()},
        "problems": problems,
        "warnings": warnings,
        "workdir": str(workdir),
        "elapsed_s": time.monotonic() - started,
    }
    if problems or keep:
        log(f"logs and state kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        res["workdir"] = None
    return res


# --------------------------------------------------------------------------- report


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def report_text(res: dict[str, Any]) -> str:
    s, m, c = res["settings"], res["machine"], res["configs"]
    out = [
        f"audit benchmark: {m['nproc']} cores, Python {m['python']}, websockets {m['websockets']}, "
        f"trio {m['trio']}, SQLite {m['sqlite']}, state dirs on {m['state_fs']}, {res['elapsed_s']:.0f} s",
        f"load: {s['conns']} connections x {s['inflight']} in flight, {res['event_bytes']}-byte JSON events, "
        f"{s['workers']} load worker processes, {s['rounds']} round(s) of {s['warmup']:g} s warm-up + "
        f"{s['duration']:g} s measured per config, the configs in turn",
        "",
    ]
    header = (
        "| audit  | round trips/s | msgs/s (both ways) | RTT p50 ms | RTT p99 ms | gateway CPU µs/rt "
        "| audit rows | expected rows | rt/s × off | CPU/rt × off |"
    )
    out.append(header)
    out.append(
        "|--------|--------------:|-------------------:|-----------:|-----------:|------------------:"
        "|-----------:|--------------:|-----------:|-------------:|"
    )
    for name, r in c.items():
        audit = r.get("audit") or {}
        rat = r.get("ratios", {})
        cells = [
            name.ljust(6),
            fmt(r.get("rt_per_s"), ",.0f").rjust(13),
            fmt(r.get("msgs_per_s"), ",.0f").rjust(18),
            fmt(r.get("rtt_p50_ms"), ".2f").rjust(10),
            fmt(r.get("rtt_p99_ms"), ".2f").rjust(10),
            fmt(r.get("cpu_us_per_rt"), ".1f").rjust(17),
            fmt(audit.get("rows"), ",d").rjust(10),
            fmt(r.get("audit_expected"), ",d").rjust(13),
            fmt(1.0 if name == "off" else rat.get("rt_per_s"), ".2f").rjust(10),
            fmt(1.0 if name == "off" else rat.get("cpu_us_per_rt"), ".2f").rjust(12),
        ]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("details:")
    for name, r in c.items():
        cnt = r.get("counts", {})
        shares = ", ".join(f"{k} {v:.0f}%" for k, v in r.get("cpu_pct", {}).items())
        per_round = "/".join(f"{x:,.0f}" for x in r.get("rt_per_s_rounds", [])) + " rt/s"
        if r.get("cpu_us_per_rt_rounds"):
            per_round += ", " + "/".join(f"{x:.1f}" for x in r["cpu_us_per_rt_rounds"]) + " µs/rt"
        out.append(
            f"  {name}: {r.get('round_trips', 0):,} round trips measured (per round: {per_round}); "
            f"CPU of a core: {shares}; machine {r.get('machine_busy_pct', 0):.0f}% busy, "
            f"{r.get('machine_other_pct', 0):.0f}% of it outside these processes"
        )
        out.append(
            f"    clients: {cnt.get('connections', 0)} sessions, {cnt.get('sent', 0):,} messages sent, "
            f"{cnt.get('received', 0):,} received (warm-up and drain included)"
        )
        audit = r.get("audit")
        if audit:
            out.append(
                f"    audit db: {audit['rows']:,} rows {audit['kinds']}, messages by direction {audit['directions']}, "
                f"{audit['bytes'] / max(1, audit['rows']):.0f} bytes/row; session end records claim "
                f"{audit['session_end_claims']}"
            )
            out.append(
                f"    rows 1 s after the load, gateway running: {fmt(r.get('rows_live'), ',d')}; "
                f"gateway CPU per message record over audit off: {fmt(r.get('audit_cpu_us_per_record'), '.1f')} µs"
            )
            out.append(f"    verify: {r.get('verify', '-')}")
    stops = ", ".join(f"{k} {v:.2f} s" for k, v in res["stop_s"].items())
    out.append(f"  SIGINT to exit: {stops}")
    out.extend(f"  WARNING: {w}" for w in res["warnings"])
    out.append("")
    if res["problems"]:
        out.append(f"PROBLEMS (logs and state kept in {res['workdir']}):")
        out.extend(f"  - {x}" for x in res["problems"])
    else:
        out.append(
            "no errors: every reply matched, every close was 1000 on both legs, all processes exited 0, "
            "audit rows = messages sent + received + 2 per session, and the chains verify"
        )
    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_worker":
        asyncio.run(counting_worker(json.loads(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round per config: a smoke run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--rounds", type=int, help="rounds per config (default 3)")
    parser.add_argument("--duration", type=float, help="measured seconds per round (default 4)")
    parser.add_argument("--workers", type=int, help="load worker processes (default 2)")
    parser.add_argument("--state-root", type=Path, help="where the state dirs go (default: the temp dir)")
    parser.add_argument(
        "--stores", action="store_true", help="instead: audit rows/s into SQLite vs PostgreSQL (bench/audit_stores.py)"
    )
    parser.add_argument("--postgres-dsn", help="with --stores: this database instead of a private server")
    args = parser.parse_args()
    if args.stores:
        from bench import audit_stores

        rows = 2000 if args.quick else 20000
        report = audit_stores.main(
            rounds=args.rounds or (1 if args.quick else 3), rows=rows, postgres_dsn=args.postgres_dsn, as_json=args.json
        )
        print(json.dumps(report, indent=2)) if args.json else audit_stores.print_table(report)
        return
    settings = Settings.quick() if args.quick else Settings()
    for key in ("rounds", "duration", "workers"):
        if getattr(args, key):
            setattr(settings, key, getattr(args, key))
    try:
        res = asyncio.run(run(settings, args.state_root))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: every process started by the benchmark was stopped")
        sys.exit(130)
    print(json.dumps(res, indent=2) if args.json else report_text(res))
    sys.exit(1 if res["problems"] else 0)


if __name__ == "__main__":
    main()
