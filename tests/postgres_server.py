"""A private PostgreSQL server for the tests: `initdb` into a temporary directory, `postgres` on a
free port of 127.0.0.1 and a socket in that directory, stopped and removed at the end of the run.

Nothing of the system's PostgreSQL service is used. The server refuses to run as root, and CI runs
as root: then the cluster belongs to the unprivileged `nobody` account (present on every Debian
system), the directory is handed to it, and the server processes are started as it.

Host connections use passwords (scram-sha-256), so the tests can check that a password in
`store.postgres_dsn` never shows up in output. Roles: `kt_admin` (superuser: makes databases and
plays the tamperer) and `kt_gateway` (owns each test's database, as a gateway's role would).

Where PostgreSQL is not installed the tests that need it are skipped, except under CI (`CI` set),
where that is a failure: `.ci/run` installs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from attrs import frozen

ADMIN = "kt_admin"
ADMIN_PASSWORD = "admin-pw-7c1d9e"
GATEWAY = "kt_gateway"
GATEWAY_PASSWORD = "gw-pw-4f2a8b-secret"
START_DEADLINE_SECS = 60.0


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    found = shutil.which("postgres")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@frozen
class PostgresServer:
    host: str
    port: int

    def dsn(self, dbname: str = "postgres", *, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> str:
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{dbname}"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(dbname), autocommit=True)

    def create_database(self) -> str:
        """A fresh database owned by the gateway role; its name."""
        name = "kt_" + uuid.uuid4().hex[:12]
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER {GATEWAY}')  # type: ignore[arg-type]
        return name


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root (postgres will not run as root)."""
    return {"user": "nobody", "group": "nogroup"} if os.geteuid() == 0 else {}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs the postgresql package)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    as_user = _run_as()
    # As root, under /tmp itself: a TMPDIR inside root's home could not be reached by `nobody`.
    root = Path(tempfile.mkdtemp(prefix="kt_trio_pg_", dir="/tmp" if as_user else None))
    try:
        if as_user:
            shutil.chown(root, as_user["user"], as_user["group"])
        pwfile = root / "pw"
        pwfile.write_text(ADMIN_PASSWORD + "\n")
        if as_user:
            shutil.chown(pwfile, as_user["user"], as_user["group"])
        data = root / "data"
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", ADMIN, f"--pwfile={pwfile}", "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
            check=True, capture_output=True, timeout=120, **as_user,
        )  # fmt: skip
        port = _free_port()
        log = open(root / "server.log", "wb")  # open for the server's life
        server = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-k", str(root), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, **as_user,
        )  # fmt: skip
        try:
            pg = PostgresServer("127.0.0.1", port)
            _wait_ready(pg, server, root)
            with pg.admin() as conn:
                conn.execute(f"CREATE ROLE {GATEWAY} LOGIN PASSWORD '{GATEWAY_PASSWORD}'")  # type: ignore[arg-type]
            yield pg
        finally:
            server.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, stop
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(pg: PostgresServer, server: subprocess.Popen[bytes], root: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECS
    while True:
        if server.poll() is not None:
            raise RuntimeError("postgres exited at start:\n" + (root / "server.log").read_text(errors="replace"))
        try:
            with psycopg.connect(pg.dsn(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a starting server's port; bounded by the deadline above


@pytest.fixture
def pg_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of a fresh database (as the gateway role, password included) for one test."""
    return postgres_server.dsn(postgres_server.create_database(), user=GATEWAY, password=GATEWAY_PASSWORD)
