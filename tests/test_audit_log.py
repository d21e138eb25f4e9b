"""The audit log's writer and store: records, durability, backpressure, triggers, content."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from kt_trio.audit import AuditError, db_path, open_audit_log
from kt_trio.audit.reader import verify
from kt_trio.audit.store import canonical_json, format_ts, row_hash
from kt_trio.config import AuditLoggerSettings
from kt_trio.records import (
    BreakerTransition,
    BudgetAlert,
    MessageSeen,
    PolicyDecision,
    ResponseUsage,
    SessionStarted,
    SessionSummary,
    TokenUsage,
)
from tests.helpers import audit_records

SID = "sess-1"


def settings(**kw: object) -> AuditLoggerSettings:
    return AuditLoggerSettings(**kw)  # type: ignore[arg-type]


def count(state_dir: Path) -> int:
    conn = sqlite3.connect(db_path(state_dir))
    try:
        return int(conn.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0])
    finally:
        conn.close()


def message(seq: int, content: str | None = None, sid: str = SID) -> MessageSeen:
    return MessageSeen(sid, seq, "input", "conversation.item.create", f"evt_{seq}", 120, True, content=content)


async def test_every_kind_of_record_is_stored_with_its_fields(tmp_path: Path) -> None:
    decision = PolicyDecision(
        "pii-detector", "redact", "input", reason="phone", score=0.9, redacted_kinds=("PHONE",), event_id="evt_1"
    )
    usage = TokenUsage(input_tokens=10, output_tokens=5, total_tokens=15)
    records = [
        SessionStarted(SID, "/v1/realtime", "mock", "gpt-realtime", "10.0.0.1", 1700000000.5, "ua/1", "key-a", "team"),
        MessageSeen(SID, 1, "input", "conversation.item.create", "evt_1", 321, True, (decision,)),
        decision,
        ResponseUsage(SID, "mock", "gpt-realtime", usage, "resp_1"),
        BudgetAlert(SID, 0.5, 50, 100, False),
        BreakerTransition("mock", "closed", "open", "5 failures"),
        SessionSummary(
            SID, "/v1/realtime", "mock", "gpt-realtime", "10.0.0.1", 1700000000.5, 3.25, 1, 2, 321, 654, 1000, "bye",
            "client", usage, "key-a", "team",
        ),
    ]  # fmt: skip
    async with open_audit_log(tmp_path, settings(log_all_access=True)) as audit:
        for record in records:
            await audit.write(SID if not isinstance(record, BreakerTransition) else None, record)
    stored = audit_records(tmp_path)
    kinds = [kind for _, kind, _, _ in stored]
    assert kinds == ["session_start", "message", "decision", "usage", "budget", "breaker", "session_end"]
    assert [seq for seq, *_ in stored] == list(range(1, 8))
    start, msg, dec, use, budget, breaker, end = (data for *_, data in stored)
    assert start["client_ip"] == "10.0.0.1" and start["user_agent"] == "ua/1" and start["key_name"] == "key-a"
    assert start["route"] == "/v1/realtime" and start["target"] == "mock" and start["model"] == "gpt-realtime"
    assert msg["seq"] == 1 and msg["direction"] == "input" and msg["event_id"] == "evt_1" and msg["size"] == 321
    assert msg["forwarded"] is True and msg["content"] is None
    assert msg["decisions"] == [
        {
            "policy": "pii-detector",
            "action": "redact",
            "direction": "input",
            "reason": "phone",
            "score": 0.9,
            "redacted_kinds": ["PHONE"],
            "event_type": None,
            "event_id": "evt_1",
        }
    ]
    assert dec["policy"] == "pii-detector" and dec["redacted_kinds"] == ["PHONE"]
    assert use["usage"]["total_tokens"] == 15 and use["response_id"] == "resp_1"
    assert budget["threshold"] == 0.5 and budget["max_tokens"] == 100
    assert breaker["to_state"] == "open"
    assert end["close_code"] == 1000 and end["closed_by"] == "client" and end["usage"]["input_tokens"] == 10
    assert end["duration_secs"] == 3.25 and end["bytes_out"] == 654
    assert [sid for _, _, sid, _ in stored] == [SID] * 5 + [None, SID]
    assert verify(db_path(tmp_path)).count == 7


async def test_batch_write_returns_at_once_and_commits_within_the_interval(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    """Under a frozen MockClock the flush interval never passes unless the test jumps it: a
    `write` that waited for its commit could not return (it runs in a task here, so that shows as
    a failed assertion, not a hang), and the commit happens only once the interval is jumped."""
    interval = 0.02
    async with open_audit_log(tmp_path, settings(flush_interval_ms=int(interval * 1000))) as audit:
        returned = trio.Event()

        async def write() -> None:
            await audit.write(SID, message(1))
            returned.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            await trio.testing.wait_all_tasks_blocked()  # the writer holds the batch for company
            write_returned = returned.is_set()
            nursery.cancel_scope.cancel()  # ends a write that would wait for a commit (a regression)
        assert write_returned  # returned with the record queued, not committed
        assert audit.queue_depth == 1 and count(tmp_path) == 0
        mock_clock.jump(interval)
        await trio.testing.wait_all_tasks_blocked()  # the interval is up: the writer is committing
        async with audit._limiter:  # the store's one slot: ours once that commit has finished
            assert count(tmp_path) == 1
        await trio.testing.wait_all_tasks_blocked()  # the writer is back, waiting for the next record
        assert audit.queue_depth == 0 and audit.records_written == 1


async def test_batch_holds_records_until_the_interval_or_a_flush(tmp_path: Path) -> None:
    async with open_audit_log(tmp_path, settings(flush_interval_ms=60_000)) as audit:
        for seq in range(10):
            await audit.write(SID, message(seq))
        await trio.testing.wait_all_tasks_blocked()  # the last one handed to the writer has arrived
        assert count(tmp_path) == 0  # queued, not committed: the writer waits for company
        assert audit.queue_depth == 10
        await audit.flush()
        assert count(tmp_path) == 10
        assert audit.queue_depth == 0
        await audit.write(SID, message(10))
    assert count(tmp_path) == 11  # leaving the context flushes


async def test_strict_write_returns_only_after_commit(tmp_path: Path) -> None:
    async with open_audit_log(tmp_path, settings(durability="strict", flush_interval_ms=60_000)) as audit:
        for seq in range(5):
            await audit.write(SID, message(seq))
            assert count(tmp_path) == seq + 1  # a second connection already sees it

        async def writer(n: int) -> None:
            for seq in range(20):
                await audit.write(f"s{n}", message(seq, sid=f"s{n}"))
                with sqlite3.connect(db_path(tmp_path)) as conn:
                    found = conn.execute(
                        "SELECT COUNT(*) FROM audit_records WHERE session_id = ? AND json_extract(data, '$.seq') = ?",
                        (f"s{n}", seq),
                    ).fetchone()[0]
                assert found == 1

        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(writer, n)
    assert count(tmp_path) == 205


async def test_a_full_queue_makes_writers_wait_and_loses_nothing(tmp_path: Path) -> None:
    writers, each, size = 30, 10, 4
    async with open_audit_log(tmp_path, settings(flush_interval_ms=1), queue_size=size) as audit:

        async def writer(n: int) -> None:
            for seq in range(each):
                await audit.write(f"s{n}", message(seq, sid=f"s{n}"))

        async with trio.open_nursery() as nursery:
            # Hold the writer's thread limiter: nothing can commit, so the queue fills.
            async with audit._limiter:
                for n in range(writers):
                    nursery.start_soon(writer, n)
                await trio.testing.wait_all_tasks_blocked()
                stats = audit._send.statistics()
                assert stats.current_buffer_used == size
                assert stats.tasks_waiting_send > 0  # writers wait instead of dropping
                assert audit.queue_depth > size
            # Released: every waiting writer gets through.
    found = audit_records(tmp_path)
    assert len(found) == writers * each
    for n in range(writers):
        assert [d["seq"] for _, _, sid, d in found if sid == f"s{n}"] == list(range(each))  # in order per session
    assert verify(db_path(tmp_path)).ok


async def test_write_after_close_is_refused(tmp_path: Path) -> None:
    async with open_audit_log(tmp_path, settings()) as audit:
        pass
    with pytest.raises(AuditError):
        await audit.write(SID, message(1))


async def test_write_nowait_queues_or_says_wouldblock(tmp_path: Path) -> None:
    size = 2
    async with open_audit_log(tmp_path, settings(flush_interval_ms=60_000), queue_size=size) as audit:
        accepted = 0
        async with audit._limiter:  # keep the writer from committing
            with pytest.raises(trio.WouldBlock):
                for seq in range(100):
                    audit.write_nowait(SID, message(seq))
                    accepted += 1
                    await trio.testing.wait_all_tasks_blocked()  # let the writer gather
        # The bound: one batch in the writer's hands plus a full queue.
        assert accepted == 2 * size
    assert count(tmp_path) == accepted
    async with open_audit_log(tmp_path, settings(durability="strict")) as audit:
        with pytest.raises(AuditError):
            audit.write_nowait(SID, message(5))


async def test_update_and_delete_are_refused_while_triggers_exist(tmp_path: Path) -> None:
    async with open_audit_log(tmp_path, settings()) as audit:
        await audit.write(SID, message(1))
    conn = sqlite3.connect(db_path(tmp_path))
    try:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("UPDATE audit_records SET data = '{}' WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM audit_records")
    finally:
        conn.close()
    assert count(tmp_path) == 1


async def test_not_immutable_has_no_triggers_but_still_a_chain(tmp_path: Path) -> None:
    async with open_audit_log(tmp_path, settings(immutable=False)) as audit:
        await audit.write(SID, message(1))
    with sqlite3.connect(db_path(tmp_path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0] == 0
    assert verify(db_path(tmp_path)).ok


def _scan(state_dir: Path, marker: bytes) -> bool:
    """Is `marker` anywhere in the database's files (the main file, the WAL)?"""
    return any(marker in path.read_bytes() for path in state_dir.iterdir() if path.is_file())


async def test_no_content_on_disk_unless_include_content(tmp_path: Path) -> None:
    marker = "CONTENT-MARKER-7f3a9"
    off, on = tmp_path / "off", tmp_path / "on"
    async with open_audit_log(off, settings(log_all_access=True, include_content=False)) as audit:
        # Even when a producer fills `content`, the log drops it unless include_content is on.
        await audit.write(SID, message(1, content=f"my text {marker}"))
    assert count(off) == 1
    assert not _scan(off, marker.encode())
    async with open_audit_log(on, settings(log_all_access=True, include_content=True)) as audit:
        await audit.write(SID, message(1, content=f"my text {marker}"))
    assert _scan(on, marker.encode())  # the scan does find it when it is there
    assert audit_records(on)[0][3]["content"] == f"my text {marker}"


async def test_records_queued_when_cancelled_are_still_committed(tmp_path: Path) -> None:
    with trio.CancelScope() as scope:
        async with open_audit_log(tmp_path, settings(flush_interval_ms=60_000)) as audit:
            for seq in range(5):
                await audit.write(SID, message(seq))
            scope.cancel()  # e.g. the gateway's shutdown timeout: the writer drains, shielded
            await trio.sleep_forever()
    assert count(tmp_path) == 5
    assert verify(db_path(tmp_path)).ok


def test_the_writers_hash_and_timestamps_equal_their_plain_definitions() -> None:
    """The writer's shortcuts (hash assembled around the row's JSON, one strftime a second) must
    give exactly what the chain's definition and strftime give, or old rows stop verifying."""
    rng = random.Random(7)
    for i in range(2000):
        data = {"text": rng.choice(['é\u2028"q\\', "plain", ""]), "n": rng.randint(-9, 9), "l": [1, None, {"z": "ü"}]}
        sid = rng.choice([None, "séssion", "s1"])
        content = canonical_json(
            {"seq": i, "ts": "2026-11-23T12:00:00.000001Z", "kind": "message", "session_id": sid, "data": data}
        )
        expected = hashlib.sha256(("0" * 64 + content).encode()).hexdigest()
        assert row_hash("0" * 64, i, "2026-11-23T12:00:00.000001Z", "message", sid, data) == expected
        epoch = rng.uniform(0, 4e9)
        assert format_ts(epoch) == datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
