"""The hash chain: `verify` on a good log, on logs tampered with directly in SQLite (triggers
dropped first, as an attacker would), and after retention."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from kt_trio.audit import db_path, open_audit_log, row_hash
from kt_trio.audit.reader import verify
from kt_trio.config import AuditLoggerSettings
from kt_trio.records import MessageSeen

DAY = 86400.0
T0 = 1_800_000_000.0


def message(seq: int) -> MessageSeen:
    return MessageSeen("s1", seq, "input", "conversation.item.create", f"evt_{seq}", 100 + seq, True)


class Clock:
    """An injected wall clock: records and retention read it, nobody sleeps."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def make_log(state_dir: Path, n: int = 10) -> Path:
    async with open_audit_log(state_dir, AuditLoggerSettings()) as audit:
        for seq in range(1, n + 1):
            await audit.write("s1", message(seq))
    return db_path(state_dir)


def tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER audit_records_no_update")
        conn.execute("DROP TRIGGER audit_records_no_delete")
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


async def test_a_good_log_verifies(tmp_path: Path) -> None:
    path = await make_log(tmp_path, 25)
    result = verify(path)
    assert result.ok and result.count == 25 and (result.first_seq, result.last_seq) == (1, 25)
    with sqlite3.connect(path) as conn:
        assert result.head_hash == conn.execute("SELECT hash FROM audit_records WHERE seq = 25").fetchone()[0]


async def test_an_empty_log_verifies(tmp_path: Path) -> None:
    async with open_audit_log(tmp_path, AuditLoggerSettings()):
        pass
    result = verify(db_path(tmp_path))
    assert result.ok and result.count == 0


SWAP_5_6 = (
    "UPDATE audit_records SET seq = -5 WHERE seq = 5",
    "UPDATE audit_records SET seq = 5 WHERE seq = 6",
    "UPDATE audit_records SET seq = 6 WHERE seq = -5",
)


@pytest.mark.parametrize(
    ("statements", "bad_seq", "words"),
    [
        # modified: the content no longer matches its hash
        (
            ["UPDATE audit_records SET data = replace(data, '\"size\":105', '\"size\":999') WHERE seq = 5"],
            5,
            "modified",
        ),
        (["UPDATE audit_records SET ts = '2020-01-01T00:00:00.000000Z' WHERE seq = 5"], 5, "modified"),
        (["UPDATE audit_records SET kind = 'decision' WHERE seq = 5"], 5, "modified"),
        # deleted: a gap in seq
        (["DELETE FROM audit_records WHERE seq = 5"], 6, "record 5 is missing"),
        (["DELETE FROM audit_records WHERE seq IN (4, 5)"], 6, "records 4..5 are missing"),
        (["DELETE FROM audit_records WHERE seq <= 2"], 3, "records 1..2 are missing"),
        # deleted and the rest renumbered to hide the gap: the link breaks
        (
            ["DELETE FROM audit_records WHERE seq = 5", "UPDATE audit_records SET seq = seq - 1 WHERE seq > 5"],
            5,
            "prev_hash does not match record 4",
        ),
        # reordered
        (list(SWAP_5_6), 5, "records 5 and 6 are swapped"),
        (
            [
                "UPDATE audit_records SET seq = -1 WHERE seq = 1",
                "UPDATE audit_records SET seq = 1 WHERE seq = 2",
                "UPDATE audit_records SET seq = 2 WHERE seq = -1",
            ],
            1,
            "records 1 and 2 are swapped",
        ),
    ],
)
async def test_verify_names_the_first_bad_record(
    tmp_path: Path, statements: list[str], bad_seq: int, words: str
) -> None:
    path = await make_log(tmp_path)
    tamper(path, *statements)
    result = verify(path)
    assert not result.ok
    assert result.bad_seq == bad_seq, result.problem
    assert words in (result.problem or "")


def _forge(path: Path, seq: int, prev_hash: str) -> tuple[str, str, str, str, str]:
    """A row an attacker could craft: valid JSON, a correct hash for its own content."""
    data = json.loads(json.dumps({"session_id": "s1", "seq": 99, "size": 1, "forwarded": True}))
    ts, kind = "2027-01-15T08:00:00.000000Z", "message"
    return ts, kind, "s1", json.dumps(data), row_hash(prev_hash, seq, ts, kind, "s1", data)


async def test_verify_finds_an_inserted_row(tmp_path: Path) -> None:
    path = await make_log(tmp_path)
    with sqlite3.connect(path) as conn:
        h5 = conn.execute("SELECT hash FROM audit_records WHERE seq = 5").fetchone()[0]
    ts, kind, sid, data, digest = _forge(path, 6, h5)
    # Make room at 6 (two steps: seq is unique), then insert a row that links to 5 correctly.
    tamper(
        path,
        "UPDATE audit_records SET seq = -seq WHERE seq > 5",
        "UPDATE audit_records SET seq = 1 - seq WHERE seq < 0",
        f"INSERT INTO audit_records VALUES (6, '{ts}', '{kind}', '{sid}', '{data}', '{h5}', '{digest}')",
    )
    result = verify(path)
    assert not result.ok
    assert result.bad_seq == 6 and "record 6 was inserted" in (result.problem or ""), result.problem


async def test_verify_finds_a_row_appended_with_a_wrong_link_or_hash(tmp_path: Path) -> None:
    path = await make_log(tmp_path)
    ts, kind, sid, data, digest = _forge(path, 11, "ab" * 32)
    tamper(
        path, f"INSERT INTO audit_records VALUES (11, '{ts}', '{kind}', '{sid}', '{data}', '{'ab' * 32}', '{digest}')"
    )
    result = verify(path)
    assert result.bad_seq == 11 and "prev_hash does not match record 10" in (result.problem or "")


async def test_verify_finds_a_modified_and_rehashed_row_at_the_next_link(tmp_path: Path) -> None:
    path = await make_log(tmp_path)
    with sqlite3.connect(path) as conn:
        seq, ts, kind, sid, data, prev = conn.execute(
            "SELECT seq, ts, kind, session_id, data, prev_hash FROM audit_records WHERE seq = 5"
        ).fetchone()
    changed = {**json.loads(data), "forwarded": False}
    digest = row_hash(prev, seq, ts, kind, sid, changed)
    tamper(path, f"UPDATE audit_records SET data = '{json.dumps(changed)}', hash = '{digest}' WHERE seq = 5")
    result = verify(path)
    assert result.bad_seq == 6 and "record 5 was modified and re-hashed" in (result.problem or "")


async def test_an_anchor_catches_truncation(tmp_path: Path) -> None:
    path = await make_log(tmp_path)
    head = verify(path)
    assert head.ok and head.last_seq == 10 and head.head_hash is not None
    anchor = (10, head.head_hash)
    assert verify(path, anchor).ok
    tamper(path, "DELETE FROM audit_records WHERE seq >= 9")
    assert verify(path).ok  # cutting off the end is invisible to the chain alone
    result = verify(path, anchor)
    assert not result.ok and "anchor record 10 is missing" in (result.problem or "")


# --- retention ---------------------------------------------------------------------------------


def kinds(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return [(int(s), str(k)) for s, k in conn.execute("SELECT seq, kind FROM audit_records ORDER BY seq")]


async def test_retention_removes_old_records_and_the_rest_still_verifies(tmp_path: Path) -> None:
    clock = Clock()
    path = db_path(tmp_path)
    async with open_audit_log(tmp_path, AuditLoggerSettings(retention_days=7), clock=clock) as audit:
        for seq in range(1, 6):  # day 0
            await audit.write("s1", message(seq))
        clock.now = T0 + 5 * DAY
        for seq in range(6, 9):  # day 5
            await audit.write("s1", message(seq))
        clock.now = T0 + 8 * DAY
        assert await audit.run_retention() == 5  # day 0 is past 7 days; day 5 is not
        assert kinds(path) == [(6, "message"), (7, "message"), (8, "message"), (9, "checkpoint")]
        with sqlite3.connect(path) as conn:
            checkpoint = json.loads(conn.execute("SELECT data FROM audit_records WHERE seq = 9").fetchone()[0])
        assert checkpoint["removed_through_seq"] == 5 and checkpoint["removed_count"] == 5
        result = verify(path)
        assert result.ok and result.count == 4 and result.first_seq == 6

        assert await audit.run_retention() == 0  # nothing more is old enough: no new checkpoint
        await audit.write("s1", message(9))
        clock.now = T0 + 30 * DAY  # everything is old now, the checkpoint too
        assert await audit.run_retention() == 5
        assert kinds(path) == [(11, "checkpoint")]
        assert verify(path).ok
        await audit.write("s1", message(10))
    assert kinds(path) == [(11, "checkpoint"), (12, "message")]
    assert verify(path).ok
    # Retention opened no permanent hole: the triggers are still there.
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("DELETE FROM audit_records WHERE seq = 11")
        assert conn.execute("SELECT COUNT(*) FROM audit_retention_grant").fetchone()[0] == 0
    finally:
        conn.close()


async def test_deleting_past_the_retention_checkpoint_is_found(tmp_path: Path) -> None:
    clock = Clock()
    async with open_audit_log(tmp_path, AuditLoggerSettings(retention_days=1), clock=clock) as audit:
        for seq in range(1, 4):
            await audit.write("s1", message(seq))
        clock.now = T0 + 2 * DAY
        for seq in range(4, 8):
            await audit.write("s1", message(seq))
        assert await audit.run_retention() == 3
    path = db_path(tmp_path)
    tamper(path, "DELETE FROM audit_records WHERE seq = 4")
    result = verify(path)
    assert result.bad_seq == 5 and "record 4 is missing" in (result.problem or ""), result.problem


async def test_the_periodic_retention_task_runs(tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    """The retention task sleeps `retention_interval_secs` on trio's clock between runs: under a
    frozen MockClock only a jump wakes it, and `flush()` then waits out the run it queued."""
    clock = Clock()
    interval = 3600.0
    settings = AuditLoggerSettings(retention_days=1)
    async with open_audit_log(tmp_path, settings, clock=clock, retention_interval_secs=interval) as audit:
        await audit.write("s1", message(1))
        await trio.testing.wait_all_tasks_blocked()  # the run at start has queued (nothing to remove)
        await audit.flush()  # queued behind it: that run is done
        await trio.testing.wait_all_tasks_blocked()  # and the task is asleep for `interval`
        assert kinds(db_path(tmp_path)) == [(1, "message")]
        clock.now = T0 + 3 * DAY  # message 1 is now past retention; only a periodic run removes it
        mock_clock.jump(interval)
        await trio.testing.wait_all_tasks_blocked()  # the task woke and queued its run
        await audit.flush()  # queued behind that run: it is committed
        assert kinds(db_path(tmp_path)) == [(2, "checkpoint")]
    assert verify(db_path(tmp_path)).ok


def test_row_hash_is_over_canonical_json() -> None:
    same: Callable[[dict], str] = lambda data: row_hash("0" * 64, 1, "t", "k", None, data)  # noqa: E731
    assert same({"a": 1, "b": [1, 2]}) == same({"b": [1, 2], "a": 1})
    assert same({"a": 1}) != same({"a": 2})
