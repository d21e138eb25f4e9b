"""Which trace the running task belongs to, without importing OpenTelemetry.

A session's or an HTTP request's trace (`kt_trio.telemetry.tracing`) is put in a context
variable for the life of the task that serves it; trio copies context variables into the child
tasks it starts (the session's pumps), so every record the session emits, every upstream dial
and every log line inside it can find it. With tracing off nothing is ever set: the code that
asks (`upstream_call`, the JSON log formatter) does one `ContextVar.get` and moves on, and no
OpenTelemetry module is imported at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol


class Call(Protocol):
    """One span around an upstream call: the `traceparent` that names it for the provider."""

    @property
    def traceparent(self) -> str | None: ...

    def set(self, key: str, value: Any) -> None: ...


class Scope(Protocol):
    """What a trace lends the code running inside it."""

    def ids(self) -> tuple[str, str]:
        """(trace id, span id) of the innermost span, as lowercase hex."""
        ...

    def call(self, name: str, attributes: dict[str, Any]) -> Any:
        """A context manager: a child span around an upstream call, yielding its `Call`."""
        ...


CURRENT: ContextVar[Scope | None] = ContextVar("kt_trio_trace", default=None)


class _NoCall:
    traceparent = None

    def set(self, key: str, value: Any) -> None:
        pass


NO_CALL = _NoCall()


@contextmanager
def upstream_call(name: str, attributes: dict[str, Any]) -> Iterator[Call]:
    """A span around one upstream dial or request when the running task is traced; else nothing."""
    scope = CURRENT.get()
    if scope is None:
        yield NO_CALL
        return
    with scope.call(name, attributes) as call:
        yield call


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) when the running task is traced (for log lines)."""
    scope = CURRENT.get()
    return scope.ids() if scope is not None else None


def with_traceparent(headers: list[tuple[bytes, bytes]], traceparent: str | None) -> list[tuple[bytes, bytes]]:
    """`headers` for the upstream, the client's own `traceparent` replaced by ours (W3C Trace
    Context: one `traceparent`, naming the caller's span, which is now the gateway's)."""
    if traceparent is None:
        return headers
    out = [(k, v) for k, v in headers if k != b"traceparent"]
    out.append((b"traceparent", traceparent.encode("ascii")))
    return out
