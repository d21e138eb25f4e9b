"""Detection scoreboard: precision and recall of the detectors on the project's labelled corpus.

The corpus lives in tests/data/detection/ (one JSON object a line). Each detector has a section
here that loads its rows, classifies each one and returns a `Scoreboard`: precision and recall
per family, per language and overall, and the µs per message. Sections (`SECTIONS`):

- `injection`: `prompt-injection` at its threshold on `injection_{dev,holdout,fresh}.jsonl`
  (rows `text`, `label` "injection" | "benign", `family`, `language`), plus the older
  tests/data/injection_corpus.jsonl folded into `dev` (it was tuned on, English).
  - `dev`: tuned on (batches were each measured once before being tuned on; the figures are in
    docs/benchmarks.md).
  - `holdout`: written before the multilingual detector and not edited since, but its misses
    were seen while the detector was built: optimistic too.
  - `fresh`: written last and never tuned on: the figure to expect on text nobody has seen.
- `safety`: `safety-filter` at its threshold on `safety_dev.jsonl` / `safety_holdout.jsonl` (rows
  `text`, `label` "harmful" | "benign", `family` = the category the row is or nears, `language`).
- `pii`: `pii-detector` (every kind) on `pii_dev.jsonl` / `pii_holdout.jsonl` (rows `text`,
  `values` that must come back redacted, `negatives` that must come back untouched:
  checksum-invalid identifiers and numbers that are no PII; `family` = kind, `language`,
  `region`; written by tests/data/detection/make_pii_corpus.py). Counted per value: a positive
  is a value, a negative a negative; "missed" is a leak. Families are kinds, split by region
  for national identifiers.

Usage: python bench/detection.py [--section NAME ...] [--split dev|holdout|fresh|all] [--show]
tests/test_detection_scoreboard.py keeps the overall figures from falling (floors, no timing).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kt_trio.policies.base import TextView
from kt_trio.policies.pii import PiiDetector, redact
from kt_trio.policies.prompt_injection import PromptInjection
from kt_trio.policies.safety import SafetyFilter

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DETECTION = DATA / "detection"
SPLITS = ("dev", "holdout")
# prompt-injection has a third split, written last and never tuned on (see the docstring).
INJECTION_SPLITS = (*SPLITS, "fresh")


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, positive: bool, predicted: bool) -> None:
        if positive:
            if predicted:
                self.tp += 1
            else:
                self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def line(self, label: str) -> str:
        return (
            f"  {label:22s} n={self.n:4d}  tp {self.tp:4d} fp {self.fp:3d} fn {self.fn:3d} tn {self.tn:4d}"
            f"  precision {self.precision:.3f}  recall {self.recall:.3f}"
        )


@dataclass
class Scoreboard:
    """Figures of one detector on one split of its corpus."""

    section: str
    split: str
    overall: Tally = field(default_factory=Tally)
    by_family: dict[str, Tally] = field(default_factory=dict)
    by_language: dict[str, Tally] = field(default_factory=dict)
    us_per_message: float = 0.0
    misses: list[str] = field(default_factory=list)

    def add(self, row: dict[str, str], positive: bool, predicted: bool, detail: str = "") -> None:
        self.overall.add(positive, predicted)
        self.by_family.setdefault(row.get("family", "?"), Tally()).add(positive, predicted)
        self.by_language.setdefault(row.get("language", "?"), Tally()).add(positive, predicted)
        if positive != predicted:
            kind = "missed" if positive else "false positive"
            self.misses.append(f"{kind} [{row.get('family')}/{row.get('language')}] {detail}: {row['text']!r}")

    def print(self, show: bool = False) -> None:
        print(f"== {self.section} / {self.split}: {self.us_per_message:.1f} µs per message")
        print(self.overall.line("overall"))
        print(" by family:")
        for name in sorted(self.by_family):
            print(self.by_family[name].line(name))
        print(" by language:")
        for name in sorted(self.by_language):
            print(self.by_language[name].line(name))
        if show:
            for m in self.misses:
                print("   ", m)


def read_jsonl(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def timed(classify: Callable[[str], object], texts: Iterable[str], rounds: int = 3) -> float:
    """Best-of-`rounds` µs per text of `classify` over `texts` (the machine's load only adds)."""
    texts = list(texts)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for t in texts:
            classify(t)
        best = min(best, (time.perf_counter() - start) / max(1, len(texts)) * 1e6)
    return best


# --- prompt-injection ------------------------------------------------------------------------

_OLD_FAMILY = {
    "override": "override",
    "persona": "persona",
    "devmode": "persona",
    "exfil": "exfiltration",
    "delimiter": "role_marker",
    "fake turn": "role_marker",
    "fake header": "role_marker",
    "fake end": "role_marker",
    "indirect": "indirect",
    "embedded override": "indirect",
    "base64": "encoded",
    "bare base64": "encoded",
    "hex": "encoded",
    "rot13": "encoded",
    "zero width": "obfuscated",
    "homoglyph cyrillic": "obfuscated",
    "bidi": "obfuscated",
    "fullwidth": "obfuscated",
    "spaced letters": "obfuscated",
}


def injection_rows(split: str) -> list[dict[str, str]]:
    """The rows of one split ("dev", "holdout" or "all")."""
    rows: list[dict[str, str]] = []
    for s in INJECTION_SPLITS if split == "all" else (split,):
        path = DETECTION / f"injection_{s}.jsonl"
        if path.exists():
            rows.extend({**r, "split": s} for r in read_jsonl(path))
        if s == "dev":
            # The issue-3 corpus: English, all of it tuned on (its own "holdout" too).
            for r in read_jsonl(DATA / "injection_corpus.jsonl"):
                note = r.get("note", "")
                family = next((f for k, f in _OLD_FAMILY.items() if note.startswith(k)), "override")
                rows.append({"text": r["text"], "label": r["label"], "family": family, "language": "en", "split": s})
    return rows


def injection_scoreboard(split: str = "all", detector: PromptInjection | None = None) -> Scoreboard:
    det = detector or PromptInjection()
    board = Scoreboard("prompt-injection", split)
    rows = injection_rows(split)
    for row in rows:
        score, signals = det.score(TextView(row["text"]))
        board.add(row, row["label"] == "injection", score >= det.threshold, f"{score:.2f} {sorted(signals)}")
    # As the chain calls it: a fresh view per text, the pre-filter first.
    board.us_per_message = timed(lambda t: det.inspect(TextView(t)), (r["text"] for r in rows))
    return board


def injection_section(args: argparse.Namespace) -> None:
    for split in (*INJECTION_SPLITS, "all") if args.split == "all" else (args.split,):
        injection_scoreboard(split).print(args.show)


# --- safety-filter ---------------------------------------------------------------------------


def split_rows(name: str, split: str) -> list[dict[str, str]]:
    """The rows of `<name>_<split>.jsonl` ("all": both splits)."""
    rows: list[dict[str, str]] = []
    for s in SPLITS if split == "all" else (split,):
        path = DETECTION / f"{name}_{s}.jsonl"
        if path.exists():  # safety and pii have no "fresh" split
            rows.extend({**r, "split": s} for r in read_jsonl(path))
    return rows


def safety_scoreboard(split: str = "all", detector: SafetyFilter | None = None) -> Scoreboard:
    det = detector or SafetyFilter()
    board = Scoreboard("safety-filter", split)
    rows = split_rows("safety", split)
    for row in rows:
        finding = det.inspect(TextView(row["text"]))
        board.add(row, row["label"] == "harmful", finding is not None, finding.reason if finding else "")
    board.us_per_message = timed(lambda t: det.inspect(TextView(t)), (r["text"] for r in rows))
    return board


def safety_section(args: argparse.Namespace) -> None:
    for split in (*SPLITS, "all") if args.split == "all" else (args.split,):
        safety_scoreboard(split).print(args.show)


# --- pii-detector ----------------------------------------------------------------------------


def pii_scoreboard(split: str = "all", detector: PiiDetector | None = None) -> Scoreboard:
    det = detector or PiiDetector()
    board = Scoreboard("pii-detector", split)
    rows = split_rows("pii", split)
    for row in rows:
        text = row["text"]
        out = redact(text, det.find(text))
        values: list[str] = row["values"]  # type: ignore[assignment]
        negatives: list[str] = row["negatives"]  # type: ignore[assignment]
        for v in values:
            board.add(row, True, v not in out, f"{v!r} -> {out!r}")
        for v in negatives:
            board.add(row, False, v not in out, f"{v!r} -> {out!r}")
    board.us_per_message = timed(lambda t: det.find(t), (r["text"] for r in rows))
    return board


def pii_section(args: argparse.Namespace) -> None:
    for split in (*SPLITS, "all") if args.split == "all" else (args.split,):
        board = pii_scoreboard(split)
        board.print(args.show)
        print(f"  leaks (values not redacted): {board.overall.fn}; negatives redacted: {board.overall.fp}")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "injection": injection_section,
    "safety": safety_section,
    "pii": pii_section,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--section", action="append", choices=sorted(SECTIONS), help="default: every section")
    ap.add_argument("--split", default="all", choices=(*INJECTION_SPLITS, "all"), help="fresh: injection only")
    ap.add_argument("--show", action="store_true", help="list the misclassified rows")
    args = ap.parse_args()
    for name in args.section or SECTIONS:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
