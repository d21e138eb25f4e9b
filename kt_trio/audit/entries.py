"""What the audit writer's queue holds (`kt_trio.audit.writer`): entries, their waiters, and
the errors a writer sees."""

from __future__ import annotations

import attrs
import trio

from kt_trio.records import MessageSeen, Record


class AuditError(Exception):
    """The audit log cannot take or commit records (closed, or the database failed)."""


class AuditUnavailable(AuditError):
    """The store is failing (disk full ...): the record was not taken, or not committed."""


class Waiter:
    """Completion of one queued operation (a strict write, a flush, a retention run)."""

    __slots__ = ("error", "event", "result")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.error: BaseException | None = None
        self.result = 0

    def finish(self, error: BaseException | None = None, result: int = 0) -> None:
        if self.event.is_set():  # failed during an outage, committed later by a retry
            return
        self.error = error
        self.result = result
        self.event.set()

    async def wait(self) -> int:
        await self.event.wait()
        if isinstance(self.error, AuditError):
            raise self.error
        if self.error is not None:
            raise AuditError(f"audit log write failed: {self.error}") from self.error
        return self.result


class Entry:
    __slots__ = ("record", "retention_now", "session_id", "ts", "waiter")

    def __init__(
        self,
        session_id: str | None = None,
        record: Record | None = None,
        ts: str = "",
        waiter: Waiter | None = None,
        retention_now: float | None = None,
    ) -> None:
        self.session_id = session_id
        self.record = record  # None: a flush barrier or a retention run
        self.ts = ts
        self.waiter = waiter
        self.retention_now = retention_now


def as_acknowledged(entries: list[Entry]) -> list[Entry]:
    """`entries` as they may be committed. A strict writer told its records failed (an outage)
    forwarded none of its messages; its records, committed by a later retry, then say so: each
    group of entries ends at the one carrying the group's waiter."""
    out: list[Entry] = []
    group: list[Entry] = []
    for entry in entries:
        group.append(entry)
        if entry.waiter is None:
            continue
        if entry.waiter.error is not None:
            for e in group:
                if isinstance(e.record, MessageSeen) and e.record.forwarded:
                    e.record = attrs.evolve(e.record, forwarded=False)
        out.extend(group)
        group = []
    out.extend(group)
    return out
