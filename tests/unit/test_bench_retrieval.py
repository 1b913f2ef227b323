"""Smoke test of the retrieval benchmark on a tiny generated catalog with the fake encoder."""

from __future__ import annotations

import importlib.util
import json
import re
import tempfile
from pathlib import Path

import pytest

from eval.bench_retrieval import main
from eval.bench_retrieval.queries import build_query_list
from eval.bench_retrieval.synthetic import make_synthetic

NUMBER = r"(?:-?\d+(?:\.\d+)?|nan)"
SUMMARY = re.compile(
    rf"^index_pps={NUMBER} reindex_pps={NUMBER} p50_ms_30={NUMBER} p99_ms_30={NUMBER} "
    rf"p50_ms_200={NUMBER} p99_ms_200={NUMBER} peak_rss_mb={NUMBER}$"
)
NOUNS = ["backpack", "water bottle", "desk lamp", "yoga mat", "phone case", "coffee mug"]
ADJECTIVES = ["lightweight", "insulated", "adjustable", "non-slip", "waterproof"]


def _write_catalog(directory: Path, n: int = 30) -> tuple[Path, Path]:
    products = directory / "products.jsonl"
    rows = []
    for i in range(n):
        noun, adj = NOUNS[i % len(NOUNS)], ADJECTIVES[i % len(ADJECTIVES)]
        rows.append(
            {
                "asin": f"B{i:09d}",
                "title": f"Acme {adj} {noun} model {i}",
                "description": f"A {adj} {noun} for everyday use.",
                "bullet_points": f"Made of durable material\nFits item {i}",
                "brand": "Acme" if i % 2 else "Borealis",
                "color": "black" if i % 3 else "",
                "price": None if i % 4 == 0 else 10.0 + i,
                "category": ["Home", noun.title()],
                "rating": 4.0,
                "rating_count": 10 * i,
                "is_book": False,
            }
        )
    products.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    queries = directory / "queries.tsv"
    lines = [
        "query_id\tquery",
        *(f"q{i}\t{adj} {noun}" for i, (adj, noun) in enumerate(zip(ADJECTIVES, NOUNS, strict=False))),
    ]
    queries.write_text("\n".join(lines) + "\n")
    return products, queries


def test_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    products, queries = _write_catalog(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the benchmark's data dirs go
    out_json, out_png = tmp_path / "out" / "bench.json", tmp_path / "out" / "bench.png"

    rc = main(
        [
            "--products",
            str(products),
            "--queries",
            str(queries),
            "--scale",
            "200",
            "--searches",
            "10",
            "--fake-encoder",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )

    assert rc == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert SUMMARY.match(lines[-1]), lines[-1]
    report = json.loads(out_json.read_text())
    for key in (
        "catalog",
        "queries",
        "scale",
        "index",
        "reindex",
        "search_base",
        "search_scale",
        "memory",
        "peak_rss_mb",
        "checks",
        "targets",
        "environment",
        "summary",
    ):
        assert key in report, key
    assert report["summary"] == lines[-1]
    assert all(report["checks"].values()), report["checks"]
    assert report["catalog"]["products"] == 30
    assert report["index"]["embedded"] == 30
    assert report["reindex"]["unchanged"] == 30 and report["reindex"]["embedded"] == 0
    assert report["queries"] == {**report["queries"], "searches": 10, "distinct_real": 5, "suffixed": 5}
    for block in (report["search_base"], report["search_scale"]):
        assert len(block["latencies_ms"]) == 10
        assert 0 < block["p50_ms"] <= block["p99_ms"]
    assert report["search_scale"]["catalog"] == 200
    assert report["search_scale"]["synthetic_products"] == 170
    assert report["search_scale"]["vectors"].startswith("perturbed copies of real")
    assert set(report["targets"]) == {"index_pps", "reindex_pps", "p99_ms_base", "p99_ms_scale"}
    assert all(m["peak_rss_mb"] > 0 for m in report["memory"])
    assert list(scratch.iterdir()) == []  # temporary data dirs are removed
    if importlib.util.find_spec("matplotlib") is not None:
        assert out_png.stat().st_size > 0


def test_synthetic_products_are_deterministic_and_distinct() -> None:
    from retrieval.product import Product

    base = [Product(id=f"p{i}", title=f"red cotton shirt number {i}", price=20.0) for i in range(5)]
    first, bases = make_synthetic(base, 12, seed=1)
    second, _ = make_synthetic(base, 12, seed=1)
    assert [p.model_dump() for p in first] == [p.model_dump() for p in second]
    assert len({p.id for p in first}) == 12 and all(
        p.id.startswith(f"p{b}-s") for p, b in zip(first, bases, strict=True)
    )
    assert all(17.0 <= (p.price or 0) <= 23.0 for p in first)


def test_query_list_prefers_distinct_real_queries() -> None:
    queries, distinct = build_query_list(["a", "b", "b", "c"], 7)
    assert queries[:3] == ["a", "b", "c"] and distinct == 3
    assert len(set(queries)) == 7
