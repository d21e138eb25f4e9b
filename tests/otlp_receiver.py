"""A small OTLP/HTTP trace receiver on 127.0.0.1 for tests: it answers `POST /v1/traces` the way
a collector does and decodes each body as an `ExportTraceServiceRequest` (opentelemetry-proto),
so a test sees exactly what the gateway's exporter put on the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import h11
import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

# A body far above any batch these tests export; a larger one is refused, not held.
MAX_BODY = 8 * 1024 * 1024


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class ReceivedSpan:
    """One exported span, its ids as lowercase hex and its attributes as plain values."""

    def __init__(self, span: Span, service: str | None) -> None:
        self.name = span.name
        self.kind = span.kind
        self.trace_id = span.trace_id.hex()
        self.span_id = span.span_id.hex()
        self.parent_span_id = span.parent_span_id.hex()
        self.start_ns = span.start_time_unix_nano
        self.end_ns = span.end_time_unix_nano
        self.status_code = span.status.code
        self.attributes = {a.key: _value(a.value) for a in span.attributes}
        self.service = service

    def __repr__(self) -> str:
        return f"<span {self.name} {self.span_id} parent={self.parent_span_id} {self.attributes}>"


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.url = ""
        self._changed = trio.Event()

    async def wait_until(self, predicate: Callable[[list[ReceivedSpan]], bool]) -> None:
        while not predicate(self.spans):
            await self._changed.wait()

    def named(self, prefix: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name.startswith(prefix)]

    def _add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(ReceivedSpan(s, attrs.get("service.name")) for s in scope_spans.spans)
        self.requests += 1
        self._changed.set()
        self._changed = trio.Event()

    async def handle(self, stream: trio.SocketStream) -> None:
        try:
            await self._serve(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass  # the exporter went away: its next request opens a new connection

    async def _serve(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        body = bytearray()
        target = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                if not data:
                    return
                continue
            if isinstance(event, h11.Request):
                target, body = event.target, bytearray()
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    return
            elif isinstance(event, h11.EndOfMessage):
                status = 404
                answer = b""
                if target == b"/v1/traces":
                    self._add(bytes(body))
                    status, answer = 200, ExportTraceServiceResponse().SerializeToString()
                headers = [("content-type", "application/x-protobuf"), ("content-length", str(len(answer)))]
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
                await stream.send_all(conn.send(h11.Data(data=answer)) or b"")
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[OtlpReceiver]:
    """A receiver serving for the block; `receiver.url` is its base URL (spans at `/v1/traces`)."""
    receiver = OtlpReceiver()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, receiver.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        receiver.url = f"http://127.0.0.1:{port}"
        try:
            yield receiver
        finally:
            nursery.cancel_scope.cancel()
