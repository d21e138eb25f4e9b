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

CPU time on this shared VM moves by up to 1.5x between runs of the same code, so the comparison
has a deterministic twin:

    python bench/policy_chain.py --against /tmp/b77 --runs 7 --instructions [--messages 1000]

runs, after the CPU-time table, one process per side under `valgrind --tool=callgrind` (both at
once: instruction counts do not depend on load) and prints instructions per message for each
figure. Each figure's loop runs three times in that process: N messages to warm up (first-message
work: lazy imports, a part's first delta), then N and 2N messages; the figure is
(Ir(2N) - Ir(N)) / N, so the loop's fixed cost cancels. Only these loops are counted: each runs
inside `operator.call`, the one C function callgrind toggles collection on
(`--collect-atstart=no --toggle-collect=_operator_call`) and dumps after (`--dump-after`), and
which neither side's chain calls. `PYTHONHASHSEED=0` makes dict and set layouts the same every run.
Instruction counts weigh a cache miss like a hit, so they complement the CPU figures, never
replace them.
"""

from __future__ import annotations

import argparse
import base64
import json
import operator
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def _counted(fn: Callable[[int], object], n: int) -> None:
    """`fn(n)` inside `operator.call`: under `--instructions`, callgrind counts only this and
    writes the count to a part file of its own right after it."""
    operator.call(fn, n)


def callgrind_child(n: int) -> None:
    """The loops of `main` under callgrind (see the module docstring): warm-up, N, 2N each."""
    chain = build_chain(CHAIN, {})
    items = [item_create(i) for i in range(64)]
    audio = [audio_append()]
    deltas = [text_delta(i) for i in range(len(WORDS) * 8)]
    url_items = [item_create(i, URL_TEXT) for i in range(64)]
    now = [0.0]

    def messages(fn: Callable[[bytes, bool, float], object], msgs: list[bytes]) -> Callable[[int], None]:
        def loop(k: int) -> None:
            t = now[0]
            for i in range(k):
                t += 0.7
                fn(msgs[i % len(msgs)], True, t)
            now[0] = t

        return loop

    def calls(fn: Callable[[], object]) -> Callable[[int], None]:
        def loop(k: int) -> None:
            for _ in range(k):
                fn()

        return loop

    s = chain.new_session(session_id="bench", user_agent="Mozilla/5.0", client_ip="127.0.0.1")
    loops: list[tuple[str, Callable[[int], None]]] = [
        ("conversation.item.create (~300 B)", messages(s.on_client_message, items)),
        ("input_audio_buffer.append (64 KiB)", messages(s.on_client_message, audio)),
        ("response.output_text.delta (1 token)", messages(s.on_upstream_message, deltas)),
    ]
    s2 = chain.new_session(session_id="bench-url", user_agent="Mozilla/5.0", client_ip="127.0.0.1")
    loops.append(("item.create with a 40-char URL (~300 B)", messages(s2.on_client_message, url_items)))
    raw = items[0]
    loops.append(("(scale) json.loads of the item.create", calls(lambda: json.loads(raw))))
    loops.append(("(floor) constructing a Verdict", calls(lambda: Verdict(raw))))
    print(f"kt_trio from {Path(kt_trio.__file__).parent}")
    for name, loop in loops:
        print(f"loop {name}", flush=True)
        for k in (n, n, 2 * n):
            _counted(loop, k)


def _instructions_of(root: Path, n: int, out_dir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONHASHSEED="0")
    cmd = [
        "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=_operator_call",
        "--dump-after=_operator_call", f"--callgrind-out-file={out_dir / 'cg.out'}",
        sys.executable, str(Path(__file__).resolve()), "--callgrind-child", str(n),
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


_TOTALS = re.compile(r"^(?:summary|totals): (\d+)", re.M)


def _parse_parts(root: Path, out: str, out_dir: Path, n: int) -> dict[str, float]:
    loaded = next((line.split(" from ", 1)[1] for line in out.splitlines() if line.startswith("kt_trio from ")), "")
    if Path(loaded) != root / "kt_trio":
        raise SystemExit(f"expected kt_trio from {root}, the callgrind run used {loaded!r}")
    names = [line[5:] for line in out.splitlines() if line.startswith("loop ")]
    # Parts in order of their number; every `operator.call` made one (the last part is the
    # program's end: nothing collected).
    parts = sorted(out_dir.glob("cg.out.*"), key=lambda f: int(f.name.rsplit(".", 1)[1]))
    counts = []
    for f in parts:
        m = _TOTALS.search(f.read_text(errors="replace"))
        counts.append(int(m.group(1)) if m else 0)
    if len(counts) < 3 * len(names):
        raise SystemExit(f"callgrind wrote {len(counts)} parts for {len(names)} loops under {root}")
    figures: dict[str, float] = {}
    for i, name in enumerate(names):
        _, once, twice = counts[3 * i : 3 * i + 3]
        figures[name] = (twice - once) / n
    return figures


def compare_instructions(baseline: Path, n: int) -> None:
    """Instructions per message on both sides, each side one process under callgrind."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    here = Path(__file__).resolve().parent.parent
    roots = {"baseline": baseline.resolve(), "this tree": here}
    with tempfile.TemporaryDirectory(prefix="policy-chain-cg-") as tmp:
        dirs = {side: Path(tmp) / side.replace(" ", "-") for side in roots}
        for d in dirs.values():
            d.mkdir()
        procs = {side: _instructions_of(root, n, dirs[side]) for side, root in roots.items()}
        figures: dict[str, dict[str, float]] = {}
        for side, proc in procs.items():
            out, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise SystemExit(f"callgrind run over {roots[side]} failed ({proc.returncode}):\n{err[-2000:]}")
            figures[side] = _parse_parts(roots[side], out, dirs[side], n)
    print(f"instructions per message (callgrind, Ir; (2N - N) / N with N = {n}, after N to warm up)")
    print(f"{'':42s} {'baseline':>10s} {'this tree':>10s} {'ratio':>7s}")
    for name, t in figures["this tree"].items():
        b = figures["baseline"].get(name)
        if b is not None:
            print(f"{name:42s} {b:10.0f} {t:10.0f} {t / b:6.2f}x")


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
    ap.add_argument(
        "--instructions", action="store_true",
        help="with --against: also instructions per message under callgrind (deterministic; ~2 min)",
    )  # fmt: skip
    ap.add_argument("--messages", type=int, default=1000, help="with --instructions: N (see the docstring)")
    ap.add_argument("--callgrind-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = min(args.iterations, 1_000_000)
    if args.callgrind_child is not None:
        callgrind_child(max(1, min(args.callgrind_child, 100_000)))
        return
    if args.against is not None:
        compare(args.against, max(1, min(args.runs, 50)), n)
        if args.instructions:
            compare_instructions(args.against, max(10, min(args.messages, 100_000)))
        return
    if args.instructions:
        ap.error("--instructions compares two checkouts: give --against DIR")
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
