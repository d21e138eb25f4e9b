"""Precision and recall of the `prompt-injection` policy on the labelled corpus.

The corpus (tests/data/injection_corpus.jsonl, one JSON object a line: `label` "injection" or
"benign", `text`, `note`, `split`) holds attacks of every signal family and benign prompts chosen
to look like them ("ignore the typos", "enable developer mode on Android", questions *about*
prompt injection). The target (issue 3): precision >= 0.9 and recall >= 0.8 at the configured
threshold (default 0.8).

`split`: the `dev` rows were written first and the detector tuned on them; the `holdout` rows
were written afterwards and measured before any change (precision 1.00, recall 0.68 on them
then), and have since been folded into tuning too. Figures per split are printed; treat all of
them as optimistic for traffic the corpus does not resemble.

Usage: python bench/injection_quality.py [--threshold T] [--corpus PATH] [--show]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kt_trio.config.schema import PromptInjectionSettings
from kt_trio.policies.base import TextView
from kt_trio.policies.prompt_injection import DEFAULT_THRESHOLD, PromptInjection

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "injection_corpus.jsonl"


def load(corpus: Path = CORPUS) -> list[dict[str, str]]:
    return [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(threshold: float, corpus: Path = CORPUS, split: str | None = None) -> dict[str, object]:
    detector = PromptInjection(PromptInjectionSettings(threshold=threshold))
    tp = fp = fn = tn = 0
    misses: list[tuple[str, float, str]] = []
    for row in load(corpus):
        if split is not None and row.get("split", "dev") != split:
            continue
        score, signals = detector.score(TextView(row["text"]))
        hit = score >= threshold
        attack = row["label"] == "injection"
        if attack and hit:
            tp += 1
        elif attack:
            fn += 1
            misses.append(("missed attack", score, row["text"]))
        elif hit:
            fp += 1
            misses.append(("false positive", score, row["text"] + f"  {sorted(signals)}"))
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "misses": misses}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--show", action="store_true", help="list the misclassified examples")
    args = ap.parse_args()
    for split in ("dev", "holdout", None):
        r = evaluate(args.threshold, args.corpus, split)
        n = r["tp"] + r["fp"] + r["fn"] + r["tn"]  # type: ignore[operator]
        label = split or "all"
        print(
            f"{label:8s} n={n:3d} threshold {args.threshold}: tp {r['tp']} fp {r['fp']} fn {r['fn']} tn {r['tn']}"
            f"  precision {r['precision']:.3f}  recall {r['recall']:.3f}"
        )
    if args.show:
        for kind, score, text in r["misses"]:  # type: ignore[union-attr]
            print(f"  {kind} ({score:.2f}): {text}")


if __name__ == "__main__":
    main()
