"""The one place where what sessions and the governance layer conclude is handed on.

Sessions never talk to audit, the event stream, metrics or logs directly: they emit records
(`kt_trio.records`) here, tagged with their session id, and the reporter fans them out to the
sinks the gateway registered. A sink must not block: it takes the record and returns (a sink
that needs I/O puts it on its own bounded channel and says what happens when that is full).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kt_trio.records import Record

log = logging.getLogger("kt_trio.reporting")

Sink = Callable[[str | None, Record], None]


class Reporter:
    def __init__(self) -> None:
        self._sinks: list[Sink] = []

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def emit(self, session_id: str | None, record: Record) -> None:
        for sink in self._sinks:
            try:
                sink(session_id, record)
            except Exception:  # a broken sink must not take a session down with it
                log.exception("reporting sink %r failed on %s", sink, type(record).__name__)
