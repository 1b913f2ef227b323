"""Retrieval quality on ESCI-format data: nDCG@10 (full catalog and judged pool), recall@100, latency.

python -m eval.retrieval --products P --queries Q --qrels R [--mode bm25|dense|hybrid|full] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from eval.metrics import ndcg_at, percentile, read_qrels, read_queries, recall_at
from retrieval.catalog import load_catalog
from retrieval.factory import build_components
from retrieval.search import MODES, SearchEngine
from retrieval.settings import RetrievalSettings

DEFAULT_CACHE = Path(".cache/shop/embedding-cache.sqlite")


def evaluate(
    engine: SearchEngine, queries: dict[str, str], qrels: dict[str, dict[str, int]], mode: str, show: bool = True
) -> dict:
    """Run every judged query; return aggregate figures and per-query rows."""
    rows, latencies = [], []
    engine.warm_up()
    for qid, text in tqdm(sorted(queries.items()), desc=f"queries ({mode})", disable=not show):
        grades = qrels.get(qid)
        if not grades:
            continue
        started = time.perf_counter()
        results = engine.search(text, k=100, mode=mode)  # type: ignore[arg-type]
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = [r.product.id for r in results]
        pool = engine.search(text, k=len(grades), mode=mode, restrict_to=list(grades))  # type: ignore[arg-type]
        rows.append(
            {
                "query_id": qid,
                "query": text,
                "ndcg@10": ndcg_at(ranked, grades),
                "judged_ndcg@10": ndcg_at([r.product.id for r in pool], grades),
                "recall@100": recall_at(ranked, grades),
                "top10": ranked[:10],
            }
        )
    recalls = [r["recall@100"] for r in rows if r["recall@100"] is not None]
    return {
        "mode": mode,
        "queries": len(rows),
        "ndcg@10": sum(r["ndcg@10"] for r in rows) / max(len(rows), 1),
        "judged_ndcg@10": sum(r["judged_ndcg@10"] for r in rows) / max(len(rows), 1),
        "recall@100": sum(recalls) / max(len(recalls), 1),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "per_query": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.retrieval", description=__doc__.splitlines()[0])
    ap.add_argument("--products", required=True, type=Path)
    ap.add_argument("--queries", required=True, type=Path)
    ap.add_argument("--qrels", required=True, type=Path)
    ap.add_argument("--mode", default="full", choices=MODES)
    ap.add_argument("--mapping", default="esci", help="catalog field mapping (default esci)")
    ap.add_argument("--json", type=Path, help="write the full report here")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache shared across runs")
    args = ap.parse_args(argv)

    for p in (args.products, args.queries, args.qrels):
        if not p.is_file():
            ap.error(f"file not found: {p}")
    loaded = load_catalog(args.products, args.mapping)
    for err in loaded.errors[:20]:
        print(f"skipped {err}", file=sys.stderr)
    queries, qrels = read_queries(args.queries), read_qrels(args.qrels)
    with tempfile.TemporaryDirectory(prefix="eval-retrieval-") as tmp:
        settings = RetrievalSettings(data_dir=Path(tmp), collection="eval-esci")
        comps = build_components(settings)
        comps.cache.close()
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        from retrieval.encoders import EmbeddingCache

        comps.cache = EmbeddingCache(args.cache)
        report = comps.indexer().index(loaded.products)
        print(
            f"indexed {loaded.loaded} products ({loaded.skipped} skipped, {report.embedded} embedded) "
            f"in {report.seconds:.1f}s",
            file=sys.stderr,
        )
        result = evaluate(comps.engine(), queries, qrels, args.mode)
        comps.close()
    result["products"] = loaded.loaded
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    print(
        f"ndcg@10={result['ndcg@10']:.4f} judged_ndcg@10={result['judged_ndcg@10']:.4f} "
        f"recall@100={result['recall@100']:.4f} p50_ms={result['p50_ms']:.2f} p99_ms={result['p99_ms']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
