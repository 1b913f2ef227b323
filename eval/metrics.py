"""Ranking metrics with ESCI gains (Exact 1, Substitute 0.1, Complement 0.01, Irrelevant 0)."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ESCI_GAINS = {3: 1.0, 2: 0.1, 1: 0.01, 0: 0.0}
EXACT = 3


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at(ranked: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    """nDCG@k; unjudged products gain 0; the ideal ranks every judged product."""
    ideal = dcg(sorted((ESCI_GAINS[g] for g in grades.values()), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([ESCI_GAINS.get(grades.get(pid, 0), 0.0) for pid in ranked[:k]]) / ideal


def recall_at(ranked: Sequence[str], grades: dict[str, int], k: int = 100, grade: int = EXACT) -> float | None:
    wanted = {pid for pid, g in grades.items() if g == grade}
    if not wanted:
        return None
    return len(wanted.intersection(ranked[:k])) / len(wanted)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def read_queries(path: str | Path) -> dict[str, str]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh, delimiter="\t")
        return {r["query_id"]: r["query"] for r in rows}


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path, encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            qrels[r["query_id"]][r["product_id"]] = int(r["grade"])
    return dict(qrels)
