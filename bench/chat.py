"""Time to first token and total time of a 200-chunk chat completion stream, direct to the mock
upstream vs through the gateway's `ChatApp` (the default policy chain), in one run.

    python bench/chat.py [--chunks 200] [--runs 20] [--delay-ms 0]

Both legs are hypercorn on 127.0.0.1; the client is httpx on trio. The gateway adds its policy
work per chunk and one extra loopback hop; with `--delay-ms` the upstream spaces its chunks out,
which shows that the gateway does not buffer (time to first token stays the provider's).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx
import trio

from kt_trio.chat.app import ChatApp
from kt_trio.config import load_config_text
from kt_trio.governance.breaker import UpstreamHealth
from kt_trio.mocks.http import HttpMockBehaviour, open_mock_http_upstream, serve_asgi

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me a story."}], "stream": True}


async def one(client: httpx.AsyncClient, url: str) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first = None
    n = 0
    async with client.stream("POST", url, json=BODY, headers={"authorization": "Bearer client"}) as resp:
        async for line in resp.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                if first is None:
                    first = time.perf_counter()
                n += 1
    end = time.perf_counter()
    return ((first or end) - t0) * 1000, (end - t0) * 1000, n


async def main(chunks: int, runs: int, delay_ms: float) -> None:
    words = [f"word{i} " for i in range(chunks)]
    behaviour = HttpMockBehaviour(chunks=words, chunk_delay=delay_ms / 1000)
    async with open_mock_http_upstream(behaviour) as mock:
        config = load_config_text(
            f"providers:\n  targets:\n    - id: oa\n      provider: openai\n      model: gpt-4o-mini\n"
            f"      base_url: {mock.url}/v1\n"
            "policies:\n  chain: [prompt-injection, pii-detector, safety-filter]\n"
        )
        app = ChatApp(config, secrets={"oa": "sk-x"}, health=UpstreamHealth(), report=lambda sid, rec: None)
        async with serve_asgi(app) as gw, httpx.AsyncClient(timeout=60) as client:
            legs = {"direct": mock.url + "/v1/chat/completions", "gateway": gw + "/v1/chat/completions"}
            for url in legs.values():  # warm up pools and code paths
                await one(client, url)
            results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in legs}
            for _ in range(runs):
                for name, url in legs.items():
                    results[name].append(await one(client, url))
        await app.aclose()
    print(f"{chunks}-chunk stream, {runs} runs, upstream delay {delay_ms} ms/chunk (median, p90):")
    for name, rs in results.items():
        ttft = sorted(r[0] for r in rs)
        total = sorted(r[1] for r in rs)
        p90 = max(0, int(len(rs) * 0.9) - 1)
        print(
            f"  {name:8s} ttft {statistics.median(ttft):7.2f} ms (p90 {ttft[p90]:7.2f})"
            f"  total {statistics.median(total):8.2f} ms (p90 {total[p90]:8.2f})  chunks {rs[0][2]}"
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=200)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    a = ap.parse_args()
    trio.run(main, a.chunks, a.runs, a.delay_ms)
