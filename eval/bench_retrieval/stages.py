"""The benchmark's stages, each in a fresh temporary data dir: the real catalog (cold index, unchanged
re-index, search) and the scaled catalog (upsert, BM25 build, search)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.bench_retrieval.measure import cache_rows, measure_breakdown, measure_search, memory_snapshot
from eval.bench_retrieval.synthetic import make_synthetic, noise_sigma_for, perturbed
from retrieval.encoders import HashingEncoder, TextEncoder
from retrieval.factory import build_components
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.settings import RetrievalSettings

SEED = 13
CALIBRATION_SAMPLE = 64  # synthetic products really encoded to size the vector noise
UPSERT_BATCH = 2_000


def make_settings(data_dir: Path, collection: str) -> RetrievalSettings:
    # Pin the storage to the temp dir and keep the text-only path, whatever SHOP_* says.
    return RetrievalSettings(
        data_dir=data_dir, collection=collection, chroma_mode="persistent", chroma_path=None, clip_model_path=None
    )


def bench_base(
    products: list[Product],
    queries: list[str],
    warmup: list[str],
    encoder: TextEncoder | None,
    memory: list[dict[str, Any]],
    checks: dict[str, bool],
    keep_vectors: bool,
) -> tuple[dict[str, Any], TextEncoder, dict[str, np.ndarray]]:
    """Stages 1-3 on the real catalog: cold index, unchanged re-index, search latency."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-", ignore_cleanup_errors=True) as tmp:
        settings = make_settings(Path(tmp), "bench-base")
        checks["cold_cache_absent_before"] = not settings.cache_path.exists()
        started = time.perf_counter()
        comps = build_components(settings, text_encoder=encoder)
        out["components_load_s"] = time.perf_counter() - started
        checks["cold_cache_empty"] = cache_rows(settings.cache_path) == 0 and comps.store.count() == 0
        memory.append(memory_snapshot("components built"))
        try:
            indexer = comps.indexer(show_progress=True)
            n = len(products)
            distinct_texts = len({p.text_hash() for p in products})

            started = time.perf_counter()
            report = indexer.index(products)
            seconds = time.perf_counter() - started
            out["index"] = {
                "products": n,
                "seconds": seconds,
                "products_per_s": n / max(seconds, 1e-9),
                "added": report.added,
                "embedded": report.embedded,
                "distinct_texts": distinct_texts,
                "cache_rows_after": cache_rows(settings.cache_path),
                "lexical_rebuilt": report.lexical_rebuilt,
            }
            checks["index_embedded_all"] = report.added == n and report.embedded == distinct_texts
            checks["index_stored_all"] = comps.store.count() == n
            memory.append(memory_snapshot("cold index"))

            started = time.perf_counter()
            again = indexer.index(products)
            seconds = time.perf_counter() - started
            out["reindex"] = {
                "products": n,
                "seconds": seconds,
                "products_per_s": n / max(seconds, 1e-9),
                "unchanged": again.unchanged,
                "embedded": again.embedded,
                "lexical_rebuilt": again.lexical_rebuilt,
            }
            checks["reindex_all_unchanged"] = again.unchanged == n and again.embedded == 0
            memory.append(memory_snapshot("unchanged re-index"))

            engine = comps.engine()
            out["search"] = {"catalog": n, **measure_search(engine, queries, warmup, f"{n} products")}
            out["search"]["breakdown"] = measure_breakdown(engine, queries)
            memory.append(memory_snapshot(f"search @ {n}"))

            vectors: dict[str, np.ndarray] = {}
            if keep_vectors:
                by_hash = comps.cache.get_many(comps.text_encoder.model_id, [p.text_hash() for p in products])
                vectors = {p.id: by_hash[p.text_hash()] for p in products if p.text_hash() in by_hash}
                checks["base_vectors_cached"] = len(vectors) == n
            return out, comps.text_encoder, vectors
        finally:
            comps.close()


def bench_scale(
    products: list[Product],
    vectors: dict[str, np.ndarray],
    scale: int,
    queries: list[str],
    warmup: list[str],
    encoder: TextEncoder,
    memory: list[dict[str, Any]],
    checks: dict[str, bool],
) -> dict[str, Any]:
    """Stage 4: the catalog grown to `scale` with perturbed copies, then search latency."""
    out: dict[str, Any] = {"catalog": scale, "vectors": "perturbed copies of real MiniLM vectors"}
    if isinstance(encoder, HashingEncoder):
        out["vectors"] = f"perturbed copies of real {encoder.model_id} vectors (fake encoder)"
    real = products[:scale]
    n_synth = max(scale - len(real), 0)
    started = time.perf_counter()
    synth, bases = make_synthetic(products, n_synth, SEED)
    out["synthetic_products"] = n_synth
    out["synthesis_s"] = time.perf_counter() - started
    memory.append(memory_snapshot("synthetic products"))

    # Size the noise like the real encoder's response to the same perturbations, on a small sample.
    rng = np.random.default_rng(SEED)
    sample = list(range(min(CALIBRATION_SAMPLE, n_synth)))
    if sample:
        encoded = encoder.embed_batch([synth[i].embedding_text() for i in sample])
        base_vecs = np.stack([vectors[products[bases[i]].id] for i in sample])
        text_cos = float(np.mean(np.sum(encoded * base_vecs, axis=1)))
    else:
        text_cos = 0.95
    sigma = noise_sigma_for(text_cos, encoder.dim)
    out["noise"] = {
        "sigma": sigma,
        "calibration_sample": len(sample),
        "encoded_copy_cosine_mean": text_cos,
        "note": "sigma chosen so noisy copies sit as close to their original as really-encoded copies do",
    }
    out["notes"] = [
        "synthetic products are near-duplicates of real ones (about scale/catalog copies each), so the "
        "ANN graph is more clustered than a real catalog of this size; BM25 vocabulary barely grows",
    ]

    with tempfile.TemporaryDirectory(prefix="bench-retrieval-scale-", ignore_cleanup_errors=True) as tmp:
        settings = make_settings(Path(tmp), "bench-scale")
        comps = build_components(settings, text_encoder=encoder)
        try:
            started = time.perf_counter()
            noise_cos: list[float] = []
            with tqdm(total=scale, desc=f"upserting ({scale} products)", unit="product") as bar:
                for start in range(0, len(real), UPSERT_BATCH):
                    chunk = real[start : start + UPSERT_BATCH]
                    comps.store.upsert_text(chunk, np.stack([vectors[p.id] for p in chunk]))
                    bar.update(len(chunk))
                for start in range(0, n_synth, UPSERT_BATCH):
                    chunk = synth[start : start + UPSERT_BATCH]
                    base = np.stack([vectors[products[b].id] for b in bases[start : start + UPSERT_BATCH]])
                    vecs = perturbed(base, sigma, rng)
                    noise_cos.append(float(np.mean(np.sum(vecs * base, axis=1))))
                    comps.store.upsert_text(chunk, vecs)
                    bar.update(len(chunk))
            out["upsert_s"] = time.perf_counter() - started
            out["upsert_products_per_s"] = scale / max(out["upsert_s"], 1e-9)
            out["noise"]["noisy_copy_cosine_mean"] = float(np.mean(noise_cos)) if noise_cos else None
            memory.append(memory_snapshot(f"upsert {scale}"))

            started = time.perf_counter()
            everything = [*real, *synth]
            LexicalIndex.build(everything).save(settings.lexical_dir)
            out["lexical_build_s"] = time.perf_counter() - started
            del everything
            checks["scale_stored_all"] = comps.store.count() == scale
            memory.append(memory_snapshot(f"lexical {scale}"))

            engine = comps.engine()
            checks["scale_lexical_all"] = len(engine.lexical) == scale
            out.update(measure_search(engine, queries, warmup, f"{scale} products"))
            out["breakdown"] = measure_breakdown(engine, queries)
            memory.append(memory_snapshot(f"search @ {scale}"))
        finally:
            comps.close()
    return out
