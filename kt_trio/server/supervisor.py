"""`serve --workers N`: N gateway processes on one port, and the one process that minds them.

Each worker is `python -m kt_trio serve ... --worker`: an ordinary gateway whose listening socket
has SO_REUSEPORT, so the kernel spreads new connections over the workers. The supervisor holds
the port (bound with SO_REUSEPORT, never listening, so it gets no connections) for its whole
life, so a restarted worker gets the same port back even when it was chosen with `--port 0`.

- A worker that exits while the supervisor is not stopping is restarted (after a back-off that
  grows while it keeps dying at once). The sessions it held are gone with it; their slots in
  the shared state are freed when their leases expire (`state.lease_ttl_secs`).
- SIGTERM or SIGINT: every worker is told SIGTERM and drains (open sessions get 1001); the
  supervisor exits 0 once all have exited 0, killing any still running after
  `gateway.shutdown_timeout_secs` plus a grace period.
- SIGHUP: passed on to every serving worker, each of which reloads its config files
  (`kt_trio.server.reload`); with `--watch` each worker polls the files itself.
- Metrics: the supervisor gives its workers one PROMETHEUS_MULTIPROC_DIR (prometheus_client's
  multiprocess mode), so `/metrics` on the shared port answers the sum over every worker
  whichever worker takes the scrape (`kt_trio.metrics.Metrics.render`).
- Limits: N workers must share one set of limits, so `state.backend: redis` is required; with
  the embedded backend the supervisor refuses to start rather than run N independent sets.
- Audit chains: each worker is told its index (`KT_TRIO_WORKER`), and with `store.backend:
  postgres` writes its own hash chain, `<instance id>/w<index>` (DESIGN.md: one chain per
  writer), so workers never wait on each other's chain lock; a restarted worker continues its
  predecessor's chain. With SQLite the workers share the one chain of `audit.db`, each append
  taking the database's write lock and reading the head inside it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence

import trio
from prometheus_client.multiprocess import mark_process_dead

from kt_trio.admin.siblings import WORKERS_DIR_ENV

log = logging.getLogger("kt_trio.supervisor")

READY_MARK = b"(health: "
READY_TIMEOUT_SECS = 60.0
# Time a worker gets beyond `shutdown_timeout_secs` to close its listeners and exit.
EXIT_GRACE_SECS = 5.0
RESTART_BACKOFF_SECS = (0.2, 1.0, 5.0)
# Set in each worker's environment: its index among the workers (0..N-1), stable across restarts.
WORKER_ENV = "KT_TRIO_WORKER"
# A worker that ran this long before dying is restarted at the shortest back-off again.
STABLE_SECS = 30.0
# Set in each worker's environment: the supervisor's pid, so a worker can tell it is orphaned.
SUPERVISOR_ENV = "KT_TRIO_SUPERVISOR"
# How often a worker checks that its supervisor is alive: one getppid() a second; an orphan
# starts draining within this long.
ORPHAN_CHECK_SECS = 1.0


def embedded_refusal(workers: int) -> str:
    return (
        f"serve --workers {workers}: every worker would keep its own limits, budgets, breakers and"
        " event stream behind one port; set `state.backend: redis` (with `state.redis_url`) so they"
        " share them, or run one worker"
    )


def worker_chain(chain: str) -> str:
    """The audit chain this process writes: `chain` itself, or `chain/w<i>` in worker i."""
    index = os.environ.get(WORKER_ENV)
    return f"{chain}/w{index}" if index else chain


async def drain_when_orphaned() -> None:
    """In a worker: once its supervisor is gone (killed -9, OOM-killed, a service manager that
    signals only the main process), SIGTERM to itself, so it drains as on a supervisor's stop
    instead of serving the port unsupervised forever. A poll, not PR_SET_PDEATHSIG: trio starts
    processes from a worker thread, and the death signal follows the thread, not the process."""
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor:
        return
    while os.getppid() == int(supervisor):
        await trio.sleep(ORPHAN_CHECK_SECS)
    log.warning("the supervisor (pid %s) is gone: draining this worker", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


def reserve_port(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: trio.Process | None = None
        self.exit_code: int | None = None
        self.restarts = 0
        self.ready = False  # serving (its signal handlers installed)


class Supervisor:
    def __init__(self, argv: Sequence[str], workers: int, host: str, port: int, shutdown_timeout: float) -> None:
        self.argv = list(argv)
        self.workers = [Worker(i) for i in range(workers)]
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self.stopping = False

    async def run(self) -> int:
        reserved = reserve_port(self.host, self.port)
        self.port = reserved.getsockname()[1]
        own_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="kt_trio_metrics_")
        # The workers' admin sockets (kt_trio.admin.siblings): 0700, so only this user connects.
        workers_dir = tempfile.mkdtemp(prefix="kt_trio_workers_")
        self.env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, WORKERS_DIR_ENV: workers_dir}
        try:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
                async with trio.open_nursery() as nursery:
                    for worker in self.workers:
                        await nursery.start(self._keep_running, worker)
                    url = f"{self.host}:{self.port}"
                    print(
                        f"kt_trio serving with {len(self.workers)} workers on ws://{url} (health: http://{url}/healthz)",
                        flush=True,
                    )
                    async for signum in signals:
                        if signum == signal.SIGHUP:  # a config reload: each worker reloads itself
                            self._forward(signal.SIGHUP)
                            continue
                        log.info("%s: draining every worker", signal.Signals(signum).name)
                        self._stop()
                        break
                    nursery.cancel_scope.deadline = trio.current_time() + self.shutdown_timeout + EXIT_GRACE_SECS
        finally:
            for worker in self.workers:
                if worker.proc is not None and worker.proc.returncode is None:
                    worker.proc.kill()
            reserved.close()
            if own_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)
            shutil.rmtree(workers_dir, ignore_errors=True)
        return 0 if all(w.exit_code == 0 for w in self.workers) else 1

    def _forward(self, signum: int) -> None:
        """To every worker that is serving (one still starting has no handler yet: SIGHUP would
        kill it, and it reads the current files as it starts anyway)."""
        for worker in self.workers:
            if worker.proc is not None and worker.proc.returncode is None and worker.ready:
                worker.proc.send_signal(signum)

    def _stop(self) -> None:
        self.stopping = True
        for worker in self.workers:
            if worker.proc is not None and worker.proc.returncode is None:
                worker.proc.send_signal(signal.SIGTERM)

    async def _keep_running(
        self, worker: Worker, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        backoff = 0
        while True:
            born = trio.current_time()
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "kt_trio", *self.argv, "--port", str(self.port), "--worker"],
                stdout=subprocess.PIPE,
                env={**self.env, WORKER_ENV: str(worker.index), SUPERVISOR_ENV: str(os.getpid())},
            )
            worker.proc = proc
            worker.ready = False
            try:
                ready = worker.ready = await self._wait_ready(proc)
                if not started:
                    if not ready:
                        raise RuntimeError(f"worker {worker.index} did not start (exit code {proc.returncode})")
                    started = True
                    task_status.started()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pass_output, proc)
                    code = await proc.wait()
                    nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
                    mark_process_dead(proc.pid, self.env["PROMETHEUS_MULTIPROC_DIR"])  # type: ignore[no-untyped-call]
            if self.stopping and code == -signal.SIGTERM:
                code = 0  # told to stop before it had set up its own handler: nothing to drain
            worker.exit_code = code
            if self.stopping:
                return
            lived = trio.current_time() - born
            backoff = 0 if lived > STABLE_SECS else min(backoff + 1, len(RESTART_BACKOFF_SECS) - 1)
            worker.restarts += 1
            log.warning(
                "worker %d (pid %d) exited with %s: restarting",
                worker.index,
                proc.pid,
                code,
            )
            await trio.sleep(RESTART_BACKOFF_SECS[backoff])
            if self.stopping:
                return

    async def _wait_ready(self, proc: trio.Process) -> bool:
        """Reads the worker's output up to its ready line (not repeated: the supervisor prints
        one for all); False when it exits or hangs first."""
        assert proc.stdout is not None
        seen = b""
        with trio.move_on_after(READY_TIMEOUT_SECS):
            while READY_MARK not in seen:
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    return False
                seen = (seen + chunk)[-4096:]
            return True
        return False

    async def _pass_output(self, proc: trio.Process) -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.receive_some(4096):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()


def supervise(argv: Sequence[str], workers: int, host: str, port: int, shutdown_timeout: float) -> int:
    return trio.run(Supervisor(argv, workers, host, port, shutdown_timeout).run)
