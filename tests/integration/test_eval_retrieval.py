"""`python -m eval.retrieval` on a small slice of the real ESCI subset, with the real MiniLM."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval.metrics import ndcg_at, recall_at
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration
ESCI = SHARED_DATA / "esci-subset"
LAST_LINE = re.compile(
    r"^ndcg@10=(\d+\.\d+) judged_ndcg@10=(\d+\.\d+) recall@100=(\d+\.\d+) p50_ms=(\d+\.\d+) p99_ms=(\d+\.\d+)$"
)


def _slice(tmp: Path, n_queries: int = 3) -> tuple[Path, Path, Path]:
    with open(ESCI / "qrels.tsv", encoding="utf-8") as fh:
        qrels = list(csv.DictReader(fh, delimiter="\t"))
    qids = sorted({r["query_id"] for r in qrels})[:n_queries]
    keep = [r for r in qrels if r["query_id"] in qids]
    pids = {r["product_id"] for r in keep}
    products = tmp / "products.jsonl"
    with open(ESCI / "products.jsonl", encoding="utf-8") as src, open(products, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if json.loads(line)["asin"] in pids or i < 40:  # judged products plus some distractors
                dst.write(line)
    queries = tmp / "queries.tsv"
    with open(ESCI / "queries.tsv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["query_id"] in qids]
    queries.write_text("query_id\tquery\n" + "".join(f"{r['query_id']}\t{r['query']}\n" for r in rows))
    qrels_path = tmp / "qrels.tsv"
    qrels_path.write_text(
        "query_id\tproduct_id\tgrade\n" + "".join(f"{r['query_id']}\t{r['product_id']}\t{r['grade']}\n" for r in keep)
    )
    return products, queries, qrels_path


def test_eval_cli_prints_the_summary_line_last_and_writes_json(tmp_path: Path) -> None:
    if not (ESCI / "products.jsonl").is_file():
        pytest.skip(f"ESCI subset not found at {ESCI}")
    products, queries, qrels = _slice(tmp_path)
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "eval.retrieval", "--products", str(products), "--queries", str(queries)]
    cmd += ["--qrels", str(qrels), "--mode", "hybrid", "--json", str(out), "--cache", str(tmp_path / "c.sqlite")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = LAST_LINE.match(last)
    assert m, last
    report = json.loads(out.read_text())
    assert report["queries"] == 3 and report["mode"] == "hybrid"
    assert float(m.group(1)) == pytest.approx(report["ndcg@10"], abs=1e-4)
    # The judged pool of each query is tiny here, so ranking it well is easy: the figures must be real.
    assert 0.3 < report["judged_ndcg@10"] <= 1.0
    assert 0 < report["recall@100"] <= 1.0
    assert all(len(q["top10"]) == 10 for q in report["per_query"])


def test_eval_cli_rejects_missing_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "eval.retrieval",
            "--products",
            str(tmp_path / "x.jsonl"),
            "--queries",
            "q",
            "--qrels",
            "r",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2 and "file not found" in proc.stderr


def test_metrics_follow_the_esci_gains() -> None:
    grades = {"e": 3, "s": 2, "c": 1, "i": 0}
    assert ndcg_at(["e", "s", "c", "i"], grades) == pytest.approx(1.0)
    assert ndcg_at(["x", "e"], grades) < ndcg_at(["e", "x"], grades)
    assert ndcg_at(["s", "e"], grades) == pytest.approx((0.1 + 1 / 1.585) / (1 + 0.1 / 1.585 + 0.01 / 2), rel=1e-3)
    assert recall_at(["e"], grades) == 1.0 and recall_at(["s"], grades) == 0.0
    assert recall_at(["e"], {"s": 2}) is None
