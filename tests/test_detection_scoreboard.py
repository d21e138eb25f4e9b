"""The detection scoreboard (bench/detection.py) must not fall: floors a little under the figures
measured when they were set (see docs/benchmarks.md). Quality only; timing is the bench's job."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "detection.py"


@pytest.fixture(scope="module")
def detection() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_detection", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


# split -> (precision floor, recall floor) for prompt-injection.
INJECTION_FLOORS = {"dev": (0.97, 0.92), "holdout": (0.97, 0.93)}


@pytest.mark.parametrize("split", sorted(INJECTION_FLOORS))
def test_injection_figures_hold(detection: ModuleType, split: str) -> None:
    board = detection.injection_scoreboard(split)
    rows = detection.injection_rows(split)
    assert board.overall.n == len(rows) > 100
    precision, recall = INJECTION_FLOORS[split]
    assert board.overall.precision >= precision, board.misses
    assert board.overall.recall >= recall, board.misses


def test_injection_corpus_shape(detection: ModuleType) -> None:
    """Both labels in every split, every row labelled with a family and a language, no text in
    both splits (the held-out figures would not be held out)."""
    texts: dict[str, set[str]] = {}
    for split in detection.SPLITS:
        rows = detection.injection_rows(split)
        assert {r["label"] for r in rows} == {"injection", "benign"}
        assert all(r["family"] and r["language"] for r in rows)
        texts[split] = {r["text"] for r in rows}
    assert not texts["dev"] & texts["holdout"]
