"""Retrieval performance: cold indexing, unchanged re-index, search latency at catalog size and at scale.

`python -m eval.bench_retrieval --help` lists the options; it writes a JSON report and a latency plot and
prints a one-line summary last.

Every stage runs in a fresh temporary data dir (Chroma, BM25 files and the embedding cache all live
there), removed at the end. The scaled catalog is built from perturbed copies of the real products;
their vectors are the real products' text vectors plus small Gaussian noise (really encoding every copy
on a CPU would take far longer than the rest of the benchmark), so the scaled figures measure search
cost, not quality.

- `cli`: the options and the run from start to report;
- `stages`: the real catalog's stages (cold index, unchanged re-index, search) and the scaled one's;
- `queries`, `synthetic`: what is searched and what the scaled catalog holds;
- `measure`: latency, step breakdown and memory measurements;
- `report`: targets, table, summary line, plot.
"""

from eval.bench_retrieval.cli import main

__all__ = ["main"]
