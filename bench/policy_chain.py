"""Per-message cost of the full policy chain (issue 3, "Speed").

Runs the default chain — prompt-injection, pii-detector, safety-filter, bot-detector (plus
audit-logger and session-budget, which this chain skips: other parts of the gateway own them) —
over three messages and prints microseconds per message:

- a ~300-byte `conversation.item.create` (client → provider, benign text: the common case);
- a 64 KiB `input_audio_buffer.append` (recognised by its type, never parsed);
- a `response.output_text.delta` carrying one token (provider → client, through the streaming
  redactor). Its text is a few bytes; with the GA envelope (event, response and item ids,
  indices) the event is ~160 bytes, as on the wire;
- the same kind of `conversation.item.create` with a 40-character URL in its text
  (`https://example.com/docs/troubleshooting`): a word over 11 characters sends the text through
  prompt-injection's encoded-payload check, and the URL's path is a base64-looking run it tries
  to decode.

Usage: python bench/policy_chain.py [--iterations N]   (default 20000; bounded, single-threaded)
For scale it also prints `json.loads` of the same 300-byte event and the no-op floor (a Verdict).

Against a baseline measured in the same window (the machine is shared: figures only compare
when taken side by side):

    git worktree add /tmp/b77 b77814e
    python bench/policy_chain.py --against /tmp/b77 [--runs 3]

runs this script over both checkouts' kt_trio in turn (`--runs` pairs, each its own process,
baseline first; the same messages and timing for both), and prints each figure's median per side
and their ratio.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import kt_trio
from kt_trio.policies.chain import Verdict, build_chain

CHAIN = ["prompt-injection", "pii-detector", "safety-filter", "bot-detector", "audit-logger", "session-budget"]

TEXT = (
    "Hi! Could you summarise the attached meeting notes for the team and list the three open action "
    "items, with owners and due dates? Keep it short, friendly and in plain English please."
)


# ~300 bytes as an event, like TEXT's; 40 characters of URL, no digits (no PII candidate).
URL_TEXT = (
    "Hi! The setup page at https://example.com/docs/troubleshooting fails for the team. Could you "
    "summarise what it says and list the three open action items? Keep it short, please."
)


def item_create(i: int, text: str = TEXT) -> bytes:
    return json.dumps(
        {
            "type": "conversation.item.create",
            "event_id": f"evt_{i:012d}",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        },
        separators=(",", ":"),
    ).encode()


def audio_append() -> bytes:
    payload = base64.b64encode(os.urandom(48 * 1024)).decode()  # 64 KiB of base64
    return json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_a", "audio": payload}).encode()


WORDS = ["Sure", ", here", " is", " the", " summary", " of", " the", " notes", ":", " the", " team", " agreed"]


def text_delta(i: int) -> bytes:
    return json.dumps(
        {
            "type": "response.output_text.delta",
            "event_id": f"event_{i:08d}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": WORDS[i % len(WORDS)],
        },
        separators=(",", ":"),
    ).encode()


# Messages per timed round. Time is this thread's CPU time (`thread_time`: on a shared machine
# wall time counts the waits for a core), and the best of many short rounds is the figure (other
# processes still cost caches: load only ever adds time).
ROUND = 200


def per_message(fn, messages: list[bytes], n: int) -> float:
    """Best of n/ROUND rounds of ROUND messages: the machine's other load only ever adds time."""
    best = float("inf")
    rounds = max(5, n // ROUND)
    k = max(1, n // rounds)
    t = 0.0
    for _ in range(rounds):
        start = time.thread_time()
        for i in range(k):
            # A fixed 0.7 s cadence, and the same text in every item.create: after 8 messages the
            # bot detector flags the session (inhuman_cadence + repeated_messages, score 0.78)
            # and from then on re-finds that on every message (one decision, the first time).
            # Kept as is: it is the detector's more expensive path, and figures stay comparable.
            t += 0.7
            fn(messages[i % len(messages)], True, t)
        best = min(best, (time.thread_time() - start) / k * 1e6)
    return best


def per_call(fn, n: int) -> float:
    best = float("inf")
    rounds = max(5, n // ROUND)
    k = max(1, n // rounds)
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(k):
            fn()
        best = min(best, (time.thread_time() - start) / k * 1e6)
    return best


_FIGURE = re.compile(r"^(.+?)\s+([0-9.]+) µs")


def _run_from(root: Path, iterations: int) -> dict[str, float]:
    """One run of this script (the same messages, the same timing) over checkout `root`'s
    kt_trio: PYTHONPATH comes before the installed package."""
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--iterations", str(iterations)],
        cwd=root, env=env, capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    loaded = next((line.split(" from ", 1)[1] for line in out.splitlines() if line.startswith("kt_trio from ")), "")
    if Path(loaded) != root / "kt_trio":
        raise SystemExit(f"expected kt_trio from {root}, the run used {loaded!r}")
    figures: dict[str, float] = {}
    for line in out.splitlines():
        m = _FIGURE.match(line)
        if m is not None:
            figures[m.group(1).strip()] = float(m.group(2))
    return figures


def compare(baseline: Path, runs: int, iterations: int) -> None:
    here = Path(__file__).resolve().parent.parent
    sides: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
    for _ in range(runs):  # interleaved, so a burst of load on the machine hits both sides
        sides["baseline"].append(_run_from(baseline.resolve(), iterations))
        sides["this tree"].append(_run_from(here, iterations))
    names = [k for k in sides["this tree"][0] if k in sides["baseline"][0]]
    print(f"median of {runs} runs each, interleaved; baseline {baseline}, this tree {here}")
    print(f"{'':42s} {'baseline':>10s} {'this tree':>10s} {'ratio':>7s}")
    for name in names:
        b = statistics.median(r[name] for r in sides["baseline"])
        t = statistics.median(r[name] for r in sides["this tree"])
        print(f"{name:42s} {b:10.2f} {t:10.2f} {t / b:6.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=20_000)
    ap.add_argument("--against", type=Path, help="a checkout to measure beside this one (e.g. /tmp/b77)")
    ap.add_argument("--runs", type=int, default=3, help="with --against: runs per side (median)")
    args = ap.parse_args()
    n = min(args.iterations, 1_000_000)
    if args.against is not None:
        compare(args.against, max(1, min(args.runs, 50)), n)
        return
    chain = build_chain(CHAIN, {})

    items = [item_create(i) for i in range(64)]
    audio = [audio_append()]
    deltas = [text_delta(i) for i in range(len(WORDS) * 8)]
    url_items = [item_create(i, URL_TEXT) for i in range(64)]
    sizes = (
        f"item.create {len(items[0])} B, audio append {len(audio[0])} B, delta event ~{len(deltas[1])} B, "
        f"item.create with URL {len(url_items[0])} B"
    )
    print(f"sizes: {sizes}; best of {max(5, n // ROUND)} rounds of {n // max(5, n // ROUND)} messages")
    print(f"kt_trio from {Path(kt_trio.__file__).parent}")

    # One session for all three measurements, with a browser user agent (see `per_message` for
    # what the bot detector makes of the cadence).
    s = chain.new_session(session_id="bench", user_agent="Mozilla/5.0", client_ip="127.0.0.1")
    results = {
        "conversation.item.create (~300 B)": per_message(s.on_client_message, items, n),
        "input_audio_buffer.append (64 KiB)": per_message(s.on_client_message, audio, n),
        "response.output_text.delta (1 token)": per_message(s.on_upstream_message, deltas, n),
    }
    # A session of its own, so its items are not the first one's repeats (same cadence).
    s = chain.new_session(session_id="bench-url", user_agent="Mozilla/5.0", client_ip="127.0.0.1")
    results["item.create with a 40-char URL (~300 B)"] = per_message(s.on_client_message, url_items, n)
    for name, us in results.items():
        print(f"{name:42s} {us:8.2f} µs/message")

    raw = items[0]
    print(f"{'(scale) json.loads of the item.create':42s} {per_call(lambda: json.loads(raw), n):8.2f} µs")
    print(f"{'(floor) constructing a Verdict':42s} {per_call(lambda: Verdict(raw), n):8.2f} µs")


if __name__ == "__main__":
    main()
