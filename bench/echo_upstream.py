"""A fast echo upstream for the relay benchmark (asyncio `websockets`, one process).

Echoes every message, text or binary, on any path; no keepalive, no compression, 32 MiB messages.
It counts the close codes it receives per `bench=` query value (the path label the benchmark puts in
the client URL, which the relays pass through) and prints them as one JSON line on SIGINT/SIGTERM.

    python bench/echo_upstream.py --port 41100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import sys
from collections import Counter
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

MAX_SIZE = 32 * 1024 * 1024

close_codes: Counter[str] = Counter()
connections: Counter[str] = Counter()


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def echo(ws: ServerConnection) -> None:
    label = "?"
    if ws.request is not None:
        label = parse_qs(urlsplit(ws.request.path).query).get("bench", ["?"])[0]
    connections[label] += 1
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass
    close_codes[f"{label}:{ws.close_code}"] += 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_nofile()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        echo,
        args.host,
        args.port,
        max_size=MAX_SIZE,
        compression=None,
        ping_interval=None,
        close_timeout=5,
        backlog=4096,
    ):
        print(f"echo upstream on ws://{args.host}:{args.port}", flush=True)
        await stop
    print(json.dumps({"connections": dict(connections), "close_codes": dict(close_codes)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
