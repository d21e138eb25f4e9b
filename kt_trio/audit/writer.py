"""The audit writer: one task, one bounded queue, group commit, off the event loop.

Sessions call `AuditLog.write`; the record goes on a bounded memory channel; the one writer task
takes everything queued so far and commits it in one SQLite transaction on a worker thread
(`trio.to_thread.run_sync` with a limiter of 1). Nothing else writes the database.

- batch durability: `write` returns once the record is queued; the writer waits at most
  `flush_interval_ms` after the first record of a batch to gather more, then commits. So a record
  is committed within the interval (plus the commit itself), and a busy gateway pays one commit
  per interval instead of one per message.
- strict durability: `write` returns only after the record's transaction committed. The writer
  does not wait for a batch to fill; while one commit runs on the thread, the next records queue
  up, and they all share the next commit (group commit): many waiters, one fsync.
- A full queue makes `write` wait (backpressure reaches the session, which stops reading its
  sockets); an audit record is never dropped.
- A failing store (a full disk, an I/O error, a lost database) never ends the writer: the batch
  in hand stays in memory and is retried every `RETRY_SECS` until it commits. Meanwhile the log
  is unavailable (`available`, `on_availability`): strict writes fail at once with
  `AuditUnavailable` (their sessions close, nothing unrecorded is forwarded), and batch writes
  are taken while the queue has room, then fail the same way instead of waiting. Once a commit
  succeeds, the log is available again by itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from kt_trio.audit.entries import AuditError, AuditUnavailable, Entry, Waiter, as_acknowledged
from kt_trio.audit.store import AuditBackend, format_ts, open_store
from kt_trio.config.schema import AuditLoggerSettings, Store
from kt_trio.records import Record

log = logging.getLogger("kt_trio.audit")

# Why 1024: at the default 50 ms flush interval the writer also commits early whenever a batch
# reaches this size, so the queue (plus the batch being gathered, the same bound) holds at most two
# batches: about 1 MB of small records, or what the sessions' own message size limits allow when
# content is included. A sustained rate above what SQLite commits makes sessions wait, by design.
DEFAULT_QUEUE_SIZE = 1024
# Retention runs at start and then hourly: records expire by the day, so an hour late is nothing.
DEFAULT_RETENTION_INTERVAL_SECS = 3600.0
# How often a failing store is tried again: a disk freed is noticed within this long.
RETRY_SECS = 1.0


class AuditLog:
    """The handle sessions write to; made by `open_audit_log`."""

    def __init__(
        self,
        store: AuditBackend,
        settings: AuditLoggerSettings,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
        on_availability: Callable[[bool, str], None] | None = None,
    ) -> None:
        """`on_availability(available, reason)`: called on each change (a system event, a metric)."""
        self.settings = settings
        self._store = store
        self._clock = clock
        self._strict = settings.durability == "strict"
        self._send, self._receive = trio.open_memory_channel[Entry](queue_size)
        self._max_batch = queue_size
        self._batch: list[Entry] = []  # taken off the channel, not yet committed
        # One at a time on the store: the connection is never used by two threads at once.
        self._limiter = trio.CapacityLimiter(1)
        self._error: BaseException | None = None
        self.records_written = 0
        self.available = True
        self._on_availability = on_availability
        # Strict waiters not yet told, and batch writers blocked on a full queue: an outage wakes
        # them all with `AuditUnavailable` (bounded by the sessions and the queue).
        self._strict_waiters: set[Waiter] = set()
        self._blocked: set[trio.CancelScope] = set()

    # --- what sessions call -----------------------------------------------------------------

    async def write(self, session_id: str | None, record: Record) -> None:
        """Queue one record; waits while the queue is full. In strict durability, returns only
        once the record is committed."""
        waiter = self._strict_waiter()
        entry = Entry(session_id, record, format_ts(self._clock()), waiter)
        await self._put(entry)
        if waiter is not None:
            await self._wait(waiter)

    async def write_many(self, session_id: str | None, records: Sequence[Record]) -> None:
        """Queue several records in order; in strict durability, wait once, for the last one.

        The writer commits in queue order, so the last record's commit covers every earlier one:
        a session's batch of k records costs one commit wait instead of k in a row.
        """
        if not records:
            return
        last = len(records) - 1
        waiter = self._strict_waiter()
        ts = format_ts(self._clock())  # handed over together: one moment for the batch
        send = self._send
        waited = False
        for i, record in enumerate(records):
            entry = Entry(session_id, record, ts, waiter if i == last else None)
            # Without a yield per record while the queue has room (a checkpoint each cost more
            # than the rest of the hand-off); a full queue still makes the session wait.
            try:
                send.send_nowait(entry)
            except trio.WouldBlock:
                await self._put(entry)
                waited = True
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._closed_error() from None
        if waiter is not None:
            await self._wait(waiter)
        elif not waited:
            await trio.lowlevel.checkpoint()

    def write_nowait(self, session_id: str | None, record: Record) -> None:
        """Queue one record without a checkpoint, for batch durability's hot path. Raises
        `trio.WouldBlock` when the queue is full (then `await write(...)`, never drop), and
        `AuditError` in strict durability, where only `write` can wait for the commit."""
        if self._strict:
            raise AuditError("strict durability: use await write()")
        try:
            self._send.send_nowait(Entry(session_id, record, format_ts(self._clock())))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None

    async def flush(self) -> None:
        """Returns when everything queued before this call is committed."""
        waiter = Waiter()
        await self._put(Entry(waiter=waiter))
        await waiter.wait()

    async def run_retention(self, now: float | None = None) -> int:
        """Remove records older than `retention_days` before `now` (default: the clock) and
        append a checkpoint; returns how many were removed. Runs on the writer, in queue order."""
        if self.settings.retention_days is None:
            return 0
        waiter = Waiter()
        await self._put(Entry(waiter=waiter, retention_now=self._clock() if now is None else now))
        return await waiter.wait()

    @property
    def queue_depth(self) -> int:
        """Records accepted or waiting to be accepted, not yet committed (`kt_audit_queue_depth`)."""
        stats = self._send.statistics()
        return stats.current_buffer_used + stats.tasks_waiting_send + len(self._batch)

    # --- the writer ---------------------------------------------------------------------------

    def _strict_waiter(self) -> Waiter | None:
        if not self._strict:
            return None
        if not self.available:  # nothing is committed now: the session must not go on
            raise AuditUnavailable("audit unavailable")
        waiter = Waiter()
        self._strict_waiters.add(waiter)
        return waiter

    async def _wait(self, waiter: Waiter) -> None:
        try:
            await waiter.wait()
        finally:
            self._strict_waiters.discard(waiter)

    async def _put(self, entry: Entry) -> None:
        try:
            self._send.send_nowait(entry)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._closed_error() from None
        if not self.available:
            raise AuditUnavailable("audit unavailable: its queue is full")
        with trio.CancelScope() as waiting:
            self._blocked.add(waiting)
            try:
                await self._send.send(entry)
                return
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._closed_error() from None
            finally:
                self._blocked.discard(waiting)
        raise AuditUnavailable("audit unavailable: its queue is full")  # woken by an outage

    def _set_available(self, available: bool, reason: str) -> None:
        if available == self.available:
            return
        self.available = available
        if available:
            log.warning("audit log available again: %s", reason)
        else:
            log.error("audit log unavailable: %s", reason)
            unavailable = AuditUnavailable("audit unavailable")
            for waiter in list(self._strict_waiters):
                waiter.finish(error=unavailable)
            for scope in list(self._blocked):
                scope.cancel()
        if self._on_availability is not None:
            self._on_availability(available, reason)

    def _closed_error(self) -> AuditError:
        if self._error is not None:
            return AuditError(f"audit log failed: {self._error}")
        return AuditError("audit log is closed")

    def _close_input(self) -> None:
        self._send.close()

    async def _run_writer(self) -> None:
        """Gather and commit batches until the input is closed, then commit what is left.

        Commits run shielded, and if the writer is cancelled while gathering (the gateway's scope
        ended without a clean close), the batch in hand and everything queued are still committed,
        shielded: that is bounded work (at most two queue sizes), and dropping it would break the
        promise that shutdown flushes everything. A failing store is retried (see the module's
        docstring) until the input is closed; then what cannot be committed is reported lost."""
        try:
            more = True
            while more:
                more = await self._gather()
                while not await self._try_commit():
                    if not more:
                        self._give_up()
                        break
                    await trio.sleep(RETRY_SECS)
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                while self._drain():
                    if not await self._try_commit():
                        self._give_up()
                        break
                self._receive.close()  # a late writer gets AuditError instead of waiting forever
            raise
        except BaseException as exc:
            self._fail(exc)
            raise

    async def _gather(self) -> bool:
        """Fill `self._batch`; returns whether more may come (False once the input is closed)."""
        batch = self._batch
        try:
            batch.append(await self._receive.receive())
        except trio.EndOfChannel:
            return False
        # Batch durability: wait up to the flush interval for company, unless someone is
        # waiting on this commit (a flush, a retention run) or the batch is full.
        if not self._strict and batch[0].waiter is None:
            with trio.move_on_after(self.settings.flush_interval_ms / 1000):
                while len(batch) < self._max_batch:
                    try:
                        entry = await self._receive.receive()
                    except trio.EndOfChannel:
                        self._drain()
                        return False
                    batch.append(entry)
                    if entry.waiter is not None:
                        break
                    # What queued up meanwhile (a session hands over several at once) is taken
                    # without a yield per record.
                    if self._drain_until_waiter():
                        break
        # Everything queued by now joins this commit.
        self._drain()
        return True

    def _drain_until_waiter(self) -> bool:
        """Like `_drain`, but stops after an entry someone waits on; returns whether it met one."""
        batch = self._batch
        while len(batch) < self._max_batch:
            try:
                entry = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return False
            batch.append(entry)
            if entry.waiter is not None:
                return True
        return False

    def _drain(self) -> int:
        """Move what is queued into the batch (up to its size); returns the batch's length."""
        batch = self._batch
        while len(batch) < self._max_batch:
            try:
                batch.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return len(batch)

    async def _try_commit(self) -> bool:
        """One shielded attempt at committing the batch; False (and the log unavailable) when
        the store failed, with the batch kept for the next attempt."""
        with trio.CancelScope(shield=True):
            try:
                await self._commit()
            except Exception as exc:  # the store's failure, whatever the backend: never fatal
                self._set_available(False, f"{type(exc).__name__}: {exc}")
                return False
        self._set_available(True, "a commit succeeded")
        return True

    def _give_up(self) -> None:
        """Shutting down with the store still failing: what is in memory is lost, and said so."""
        self._drain()
        lost = sum(1 for entry in self._batch if entry.record is not None)
        log.error("audit log unavailable at shutdown: %d records not recorded", lost)
        unavailable = AuditUnavailable("audit unavailable")
        for entry in self._batch:
            if entry.waiter is not None:
                entry.waiter.finish(error=unavailable)
        self._batch.clear()

    async def _commit(self) -> None:
        """Commit the batch in queue order: the records between retention runs in one transaction
        each (normally the whole batch is one transaction), then wake the waiters. What is
        committed leaves the batch at once, so a retry after a failure never writes it twice."""
        batch = self._batch
        while batch:
            cut = next((i for i, entry in enumerate(batch) if entry.retention_now is not None), len(batch))
            await self._append(batch[:cut])
            del batch[:cut]
            if batch:  # a retention run is next
                await self._retain(batch[0])
                del batch[0]

    async def _append(self, entries: list[Entry]) -> None:
        rows = [(e.ts, e.session_id, e.record) for e in as_acknowledged(entries) if e.record is not None]
        if rows:
            try:
                await trio.to_thread.run_sync(self._store.append, rows, limiter=self._limiter)
            except BaseException as exc:
                for entry in entries:
                    if entry.waiter is not None:
                        entry.waiter.finish(error=exc)
                raise
            self.records_written += len(rows)
        for entry in entries:
            if entry.waiter is not None:
                entry.waiter.finish()

    async def _retain(self, entry: Entry) -> None:
        assert entry.waiter is not None and entry.retention_now is not None
        days = self.settings.retention_days
        if days is None:
            entry.waiter.finish()
            return
        now = entry.retention_now
        cutoff, now_ts = format_ts(now - days * 86400.0), format_ts(now)
        try:
            removed = await trio.to_thread.run_sync(
                self._store.remove_expired, cutoff, now_ts, days, limiter=self._limiter
            )
        except Exception as exc:  # a failed retention run is reported, not fatal to the writer
            log.exception("audit retention failed")
            entry.waiter.finish(error=exc)
            return
        if removed:
            log.info("audit retention removed %d records older than %s", removed, cutoff)
        entry.waiter.finish(result=removed)

    def _fail(self, exc: BaseException) -> None:
        """The writer is dying: wake everyone waiting on a commit that will never come."""
        self._error = exc
        log.error("audit writer failed: %r", exc)
        self._drain()
        for entry in self._batch:
            if entry.waiter is not None and not entry.waiter.event.is_set():
                entry.waiter.finish(error=exc)
        self._batch.clear()
        self._receive.close()  # blocked and future senders get BrokenResourceError -> AuditError

    async def _run_retention_loop(self, interval: float) -> None:
        while True:
            try:
                await self.run_retention()
            except AuditError:
                pass  # logged by the writer; try again next interval
            await trio.sleep(interval)


@asynccontextmanager
async def open_audit_log(
    state_dir: str | Path,
    settings: AuditLoggerSettings,
    *,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    retention_interval_secs: float = DEFAULT_RETENTION_INTERVAL_SECS,
    clock: Callable[[], float] = time.time,
    backend: Store | None = None,
    chain: str | None = None,
    on_availability: Callable[[bool, str], None] | None = None,
) -> AsyncIterator[AuditLog]:
    """Open (or create) `<state_dir>/audit.db` and run its writer for the life of the context.

    On exit, everything written before is committed and the database closed. Leave it after the
    sessions that write to it have ended: a `write` after that raises `AuditError`.
    `retention_interval_secs` and `clock` are knobs for tests. `backend` (`store.*`) may put the
    log in PostgreSQL instead, where this writer appends to its own chain `chain`. `on_availability`
    as for `AuditLog`."""
    if queue_size < 1 or not math.isfinite(retention_interval_secs) or retention_interval_secs <= 0:
        raise ValueError("queue_size and retention_interval_secs must be positive")
    store = await trio.to_thread.run_sync(open_store, state_dir, settings, backend, chain)
    audit = AuditLog(store, settings, queue_size=queue_size, clock=clock, on_availability=on_availability)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(audit._run_writer)
            retention = trio.CancelScope()

            async def retain_periodically() -> None:
                with retention:
                    await audit._run_retention_loop(retention_interval_secs)

            if settings.retention_days is not None:
                nursery.start_soon(retain_periodically)
            try:
                yield audit
            finally:
                retention.cancel()
                audit._close_input()  # the writer commits what is queued, then returns
    finally:
        # Shielded: closing the connection is quick and must happen even when we are cancelled.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(store.close, limiter=audit._limiter)
