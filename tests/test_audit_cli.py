"""`python -m kt_trio audit verify|tail|export`, end to end through a subprocess."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import trio

from kt_trio.audit import db_path, open_audit_log
from kt_trio.config import AuditLoggerSettings
from kt_trio.records import MessageSeen, SessionStarted

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86400.0


def kt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kt_trio", "audit", *args], capture_output=True, text=True, timeout=30, check=False
    )


async def make_log(state_dir: Path) -> None:
    """Day one: session s1 (start + 3 messages); day two: session s2 (start + 2 messages)."""
    now = [T0]
    async with open_audit_log(state_dir, AuditLoggerSettings(log_all_access=True), clock=lambda: now[0]) as audit:
        for sid, count in (("s1", 3), ("s2", 2)):
            await audit.write(sid, SessionStarted(sid, "/v1/realtime", "mock", "gpt-realtime", "127.0.0.1", now[0]))
            for seq in range(count):
                await audit.write(sid, MessageSeen(sid, seq, "input", "response.create", f"e{seq}", 10, True))
            now[0] += DAY


async def test_verify_ok_broken_and_missing(tmp_path: Path) -> None:
    await make_log(tmp_path)
    ok = kt("verify", "--state-dir", str(tmp_path))
    assert ok.returncode == 0, ok.stderr
    assert "OK: 7 records" in ok.stdout

    conn = sqlite3.connect(db_path(tmp_path), isolation_level=None)
    conn.execute("DROP TRIGGER audit_records_no_update")
    conn.execute("UPDATE audit_records SET data = replace(data, '\"size\":10', '\"size\":11') WHERE seq = 3")
    conn.close()
    bad = kt("verify", "--state-dir", str(tmp_path))
    assert bad.returncode == 1
    assert "record 3" in bad.stdout and "modified" in bad.stdout

    missing = kt("verify", "--state-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no audit log" in missing.stderr


async def test_verify_reads_state_dir_from_a_config(tmp_path: Path) -> None:
    await make_log(tmp_path / "state")
    config = tmp_path / "gateway.yaml"
    config.write_text(f"gateway:\n  state_dir: {tmp_path / 'state'}\n", encoding="utf-8")
    result = kt("verify", "--config", str(config))
    assert result.returncode == 0 and "OK: 7 records" in result.stdout, result.stderr


async def test_tail_prints_the_last_records_as_json_lines(tmp_path: Path) -> None:
    await make_log(tmp_path)
    last = kt("tail", "-n", "2", "--state-dir", str(tmp_path))
    assert last.returncode == 0, last.stderr
    lines = [json.loads(line) for line in last.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [6, 7]
    assert lines[-1]["kind"] == "message" and lines[-1]["data"]["event_id"] == "e1" and len(lines[-1]["hash"]) == 64

    one = kt("tail", "--session", "s1", "--state-dir", str(tmp_path))
    assert [json.loads(line)["seq"] for line in one.stdout.splitlines()] == [1, 2, 3, 4]


class LineReader:
    """Whole lines from a subprocess's stdout pipe, read through trio (so deadlines can fire)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def readline(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(4096)
            assert chunk, f"stdout closed before a full line: {self.buffer!r}"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()


async def test_tail_follow_prints_new_records_until_interrupted(tmp_path: Path) -> None:
    await make_log(tmp_path)
    argv = [sys.executable, "-m", "kt_trio", "audit", "tail", "-f", "-n", "1", "--session", "s2"]
    proc = await trio.lowlevel.open_process(
        [*argv, "--interval", "0.05", "--state-dir", str(tmp_path)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        lines = LineReader(proc.stdout)
        with trio.fail_after(10):
            assert json.loads(await lines.readline())["seq"] == 7  # the tail; now it follows
        async with open_audit_log(tmp_path, AuditLoggerSettings()) as audit:
            await audit.write("s1", MessageSeen("s1", 9, "output", "x", None, 1, True))  # another session
            await audit.write("s2", MessageSeen("s2", 9, "output", "response.done", None, 1, True))
        with trio.fail_after(10):
            record = json.loads(await lines.readline())
        assert record["seq"] == 9 and record["session_id"] == "s2" and record["data"]["event_type"] == "response.done"
        proc.send_signal(signal.SIGINT)
        with trio.fail_after(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def test_export_a_time_range_as_jsonl_and_csv(tmp_path: Path) -> None:
    await make_log(tmp_path)
    everything = kt("export", "--state-dir", str(tmp_path))
    assert everything.returncode == 0 and len(everything.stdout.splitlines()) == 7

    day_two = kt("export", "--since", "2027-01-16", "--until", "2027-01-16", "--state-dir", str(tmp_path))
    records = [json.loads(line) for line in day_two.stdout.splitlines()]
    assert [r["seq"] for r in records] == [5, 6, 7] and {r["session_id"] for r in records} == {"s2"}
    assert records[0]["ts"].startswith("2027-01-16T08:00:00")

    morning = kt(
        "export", "--since", "2027-01-15T07:00:00Z", "--until", "2027-01-15T09:00:00+00:00", "--format", "csv",
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert morning.returncode == 0, morning.stderr
    table = list(csv.DictReader(io.StringIO(morning.stdout)))
    assert [row["seq"] for row in table] == ["1", "2", "3", "4"]
    assert table[0]["kind"] == "session_start" and json.loads(table[1]["data"])["event_type"] == "response.create"

    bad = kt("export", "--since", "yesterday-ish", "--state-dir", str(tmp_path))
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr
