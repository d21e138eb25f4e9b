"""An OTLP/HTTP trace sink for the tracing benchmark (asyncio, one process): answers every
`POST /v1/traces` with 200 as a collector would, counts requests, bytes and spans, and prints
them as one JSON line on SIGINT/SIGTERM.

    python bench/otlp_sink.py --port 41318
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# Far above any batch the SDK sends (512 spans); a larger body ends the connection.
MAX_BODY = 16 * 1024 * 1024
seen = {"requests": 0, "bytes": 0, "spans": 0}


def _count(body: bytes) -> None:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    seen["requests"] += 1
    seen["bytes"] += len(body)
    seen["spans"] += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length > MAX_BODY:
                break
            body = await reader.readexactly(length)
            if head.startswith(b"POST /v1/traces "):
                _count(body)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await stop.wait()
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
