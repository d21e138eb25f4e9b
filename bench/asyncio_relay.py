"""The baseline relay of docs/benchmarks.md: a minimal asyncio `websockets` WebSocket relay.

Two pump tasks per connection, no inspection, no keepalive, no compression; the client's path and
query go to the upstream unchanged and each side's close code is passed to the other.

    python bench/asyncio_relay.py --port 41101 --upstream ws://127.0.0.1:41100
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

MAX_SIZE = 32 * 1024 * 1024
OPTS = {"max_size": MAX_SIZE, "compression": None, "ping_interval": None, "close_timeout": 5}


async def pump(src, dst) -> None:  # type: ignore[no-untyped-def]
    try:
        async for message in src:
            await dst.send(message)
    except ConnectionClosed:
        pass
    # Pass the peer's close (or 1000) on to the other side.
    code = src.close_code if src.close_code not in (None, 1005, 1006) else 1000
    await dst.close(code, src.close_reason or "")


def make_handler(upstream: str):  # type: ignore[no-untyped-def]
    async def relay(client: ServerConnection) -> None:
        assert client.request is not None
        async with connect(upstream + client.request.path, proxy=None, **OPTS) as up:
            tasks = [asyncio.create_task(pump(client, up)), asyncio.create_task(pump(up, client))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.gather(*tasks, return_exceptions=True)

    return relay


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="ws://host:port of the upstream (no path)")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(make_handler(args.upstream.rstrip("/")), args.host, args.port, backlog=4096, **OPTS):
        print(f"asyncio relay on ws://{args.host}:{args.port} -> {args.upstream}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
