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
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time

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


def per_message(fn, messages: list[bytes], n: int, rounds: int = 5) -> float:
    """Best of `rounds` runs of n/rounds messages: the machine's other load only ever adds time."""
    best = float("inf")
    k = max(1, n // rounds)
    t = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(k):
            # A fixed 0.7 s cadence, and the same text in every item.create: after 8 messages the
            # bot detector flags the session (inhuman_cadence + repeated_messages, score 0.78)
            # and from then on re-finds that on every message (one decision, the first time).
            # Kept as is: it is the detector's more expensive path, and figures stay comparable.
            t += 0.7
            fn(messages[i % len(messages)], True, t)
        best = min(best, (time.perf_counter() - start) / k * 1e6)
    return best


def per_call(fn, n: int, rounds: int = 5) -> float:
    best = float("inf")
    k = max(1, n // rounds)
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(k):
            fn()
        best = min(best, (time.perf_counter() - start) / k * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=20_000)
    n = min(ap.parse_args().iterations, 1_000_000)
    chain = build_chain(CHAIN, {})

    items = [item_create(i) for i in range(64)]
    audio = [audio_append()]
    deltas = [text_delta(i) for i in range(len(WORDS) * 8)]
    url_items = [item_create(i, URL_TEXT) for i in range(64)]
    sizes = (
        f"item.create {len(items[0])} B, audio append {len(audio[0])} B, delta event ~{len(deltas[1])} B, "
        f"item.create with URL {len(url_items[0])} B"
    )
    print(f"sizes: {sizes}; best of 5 rounds of {n // 5} messages")

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
