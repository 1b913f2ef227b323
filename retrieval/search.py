"""Hybrid product search: BM25 + dense text (+ CLIP image) fusion, then reranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from retrieval.clip import ImageEncoder, ImagePathDisabled
from retrieval.encoders import TextEncoder
from retrieval.filters import Filters
from retrieval.lexical import LexicalIndex
from retrieval.personalization import Profile
from retrieval.product import Product
from retrieval.ranking import Candidate, Reranker, RerankWeights
from retrieval.store import Hit, VectorStore

Mode = Literal["bm25", "dense", "hybrid", "full"]
MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid", "full")


class ScoreBreakdown(BaseModel):
    """Why a product was ranked where it was; `final` orders the results."""

    lexical: float = 0.0
    dense: float = 0.0
    title: float = 0.0
    image: float | None = None
    relevance: float = 0.0
    personal: float = 0.0
    quality: float = 0.0
    diversity: float = 0.0
    final: float = 0.0


class SearchResult(BaseModel):
    """A ranked product with its score breakdown."""

    product: Product
    score: float
    breakdown: ScoreBreakdown


@dataclass(frozen=True)
class FusionWeights:
    """Weights of the relevance signals; lexical scores are scaled to [0, 1] per query.

    `title` (share of query terms found in the title) and pseudo-relevance feedback (the query
    vector moved `feedback` of the way towards its `feedback_docs` best results) apply in full mode.
    """

    lexical: float = 0.35
    dense: float = 0.65
    image: float = 0.25
    title: float = 0.1
    feedback: float = 0.6
    feedback_docs: int = 5


class SearchEngine:
    """Answers product queries over a VectorStore and its LexicalIndex."""

    def __init__(
        self,
        store: VectorStore,
        lexical: LexicalIndex,
        text_encoder: TextEncoder,
        image_encoder: ImageEncoder | None = None,
        fusion: FusionWeights | None = None,
        rerank: RerankWeights | None = None,
        pool: int = 100,
        exact_scan_max: int = 20_000,
    ) -> None:
        self.store = store
        self.lexical = lexical
        self.encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion or FusionWeights()
        self.reranker = Reranker(rerank or RerankWeights())
        self.pool = pool
        # A catalog, or what its filters leave of it, of at most this many products: the nearest ones come from
        # an exact scan of the local vectors, not from Chroma. Chroma filters through its metadata first (slow for
        # a price filter) and, beside a busy model server, an unfiltered query stalls now and then; the scan is
        # cheap at this size and exact where HNSW is approximate.
        self.exact_scan_max = exact_scan_max
        self._f32: tuple[LexicalIndex, np.ndarray] | None = None

    def get_products(self, ids: Sequence[str]) -> dict[str, Product]:
        """Catalog records by id."""
        return self.lexical.get_products(ids)

    def get_text_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Text vectors by id (profiles use them)."""
        positions = [self.lexical.position[pid] for pid in ids if pid in self.lexical.position]
        if self.lexical.vectors is None or not positions:
            return self.store.get_text_vectors(ids)
        matrix = self._vectors(positions)
        return {self.lexical.ids[p]: matrix[i] for i, p in enumerate(positions)}

    def best_similarity(self, query: str, ids: Sequence[str]) -> float:
        """The highest raw cosine between the query's text embedding and these products' text vectors (0.0 for
        none): how well the best of them matches what was asked, before any fusion or reranking."""
        vectors = self.get_text_vectors(ids)
        if not vectors or not query.strip():
            return 0.0
        q = self.encoder.embed_query(query)
        return float(np.max(np.stack([np.asarray(v, dtype=np.float32) for v in vectors.values()]) @ q))

    @property
    def image_enabled(self) -> bool:
        return self.image_encoder is not None and self.store.image_count() > 0

    def warm_up(self) -> None:
        """Load the query encoder, parse the records and touch the index, so that the first search of a
        query not seen before is as fast as a repeated one."""
        self.lexical.warm()
        self.search("warm up", k=1, mode="full")

    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        k: int = 10,
        mode: Mode = "full",
        profile: Profile | None = None,
        image: str | Path | None = None,
        restrict_to: list[str] | None = None,
    ) -> list[SearchResult]:
        """Rank products for a text query, a photo, or both; `restrict_to` ranks just those ids."""
        query = query.strip()
        if not query and image is None:
            raise ValueError("a search needs a query text or an image")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if image is not None and mode == "bm25":
            raise ValueError("a photo search needs mode dense, hybrid or full (bm25 reads text only)")
        if k <= 0:
            return []
        filters = filters if filters and not filters.is_empty() else None
        centroid = profile.centroid_array() if profile is not None and mode == "full" else None
        scored = self._score(query, filters, max(self.pool, k), mode, image, restrict_to, centroid)
        if not scored:
            return []
        products = self.lexical.get_products([self.lexical.ids[p] for p in scored])
        ranked = [Candidate(products[self.lexical.ids[p]], s) for p, s in scored.items()]
        if mode == "full":
            if centroid is not None:
                vectors = self._vectors(list(scored))
                for c, vec in zip(ranked, vectors, strict=True):
                    c.vector = vec
            ranked = self.reranker.rerank(ranked, profile, k)
        else:
            ranked.sort(key=lambda c: -c.scores["relevance"])
            for c in ranked:
                c.scores["final"] = c.scores["relevance"]
        return [
            SearchResult(product=c.product, score=c.scores["final"], breakdown=ScoreBreakdown(**c.scores))
            for c in ranked[:k]
        ]

    def _score(
        self,
        query: str,
        filters: Filters | None,
        pool: int,
        mode: Mode,
        image: str | Path | None,
        restrict_to: list[str] | None,
        centroid: np.ndarray | None,
    ) -> dict[int, dict[str, float]]:
        """Candidates (by lexical-index position) with their relevance signals."""
        lex = self.lexical
        use_lex = mode != "dense" and bool(query)
        use_dense = mode != "bm25" and bool(query)
        mask = lex.mask(filters)
        cands: set[int] = set()
        if restrict_to is not None:
            cands = {lex.position[pid] for pid in restrict_to if pid in lex.position}
            if mask is not None:
                cands = {p for p in cands if mask[p]}
        lex_all = np.zeros(len(lex), dtype=np.float32)
        if use_lex:
            lex_all = lex.scores(query)
            if mask is not None:
                lex_all = np.where(mask, lex_all, 0.0)
            top = float(lex_all.max()) if lex_all.size else 0.0
            if top > 0:
                lex_all = lex_all / top
                if restrict_to is None:
                    n = min(pool, int(np.count_nonzero(lex_all)))
                    cands.update(int(i) for i in np.argpartition(-lex_all, n - 1)[:n])
        qvec = self.encoder.embed_query(query) if use_dense else None
        if restrict_to is None:
            if qvec is not None:
                cands.update(self._nearest(qvec, pool, filters, mask))
            if centroid is not None:
                # Items near the shopper's taste join the pool, so an ambiguous query can surface them.
                cands.update(self._nearest(centroid, pool // 2, filters, mask))
        image_sims = self._image_sims(query, image, filters, pool, cands, restrict_to) if mode != "bm25" else None
        if image_sims is not None and restrict_to is None:
            cands.update(image_sims)
        if not cands:
            return {}
        positions = sorted(cands)
        w = self.fusion
        lexical = lex_all[positions].astype(np.float64)
        dense = np.zeros(len(positions))
        if qvec is not None:
            vectors = self._vectors(positions)
            dense = vectors @ qvec
            if mode == "full" and w.feedback > 0 and len(positions) > w.feedback_docs:
                first = w.lexical * lexical + w.dense * dense
                best = np.argsort(-first)[: w.feedback_docs]
                moved = qvec + w.feedback * vectors[best].mean(axis=0)
                dense = vectors @ (moved / np.linalg.norm(moved))
        title = self._title_match(query, positions) if mode == "full" and use_lex else np.zeros(len(positions))
        out: dict[int, dict[str, float]] = {}
        for i, pos in enumerate(positions):
            s = {"lexical": float(lexical[i]), "dense": float(dense[i]), "title": float(title[i])}
            rel = (w.lexical * s["lexical"] if use_lex else 0.0) + (w.dense * s["dense"] if use_dense else 0.0)
            rel += w.title * s["title"]
            if image_sims is not None:
                s["image"] = image_sims.get(pos, 0.0)
                rel = rel + w.image * s["image"] if (use_lex or use_dense) else s["image"]
            s["relevance"] = rel
            out[pos] = s
        return out

    def _nearest(self, vector: np.ndarray, k: int, filters: Filters | None, mask: np.ndarray | None) -> list[int]:
        """Positions of the k products nearest to `vector` among those passing the filters: an exact scan of the
        local vectors when at most `exact_scan_max` products pass, else Chroma's HNSW index."""
        if k <= 0:
            return []
        if self.lexical.vectors is not None:
            rows = np.flatnonzero(mask) if mask is not None else np.arange(len(self.lexical))
            if len(rows) <= self.exact_scan_max:
                if len(rows) <= k:
                    return rows.tolist()
                whole = self._matrix() if mask is None else None  # the whole catalog: no per-query row copy
                sims = (whole if whole is not None else self._vectors(rows)) @ vector
                return rows[np.argpartition(-sims, k - 1)[:k]].tolist()
        return self._positions(self.store.query_text(vector, k, filters))

    def _positions(self, hits: list[Hit]) -> list[int]:
        return [self.lexical.position[h.id] for h in hits if h.id in self.lexical.position]

    def _vectors(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Text vectors of products, from the local matrix (or the store when there is none)."""
        if self.lexical.vectors is not None:
            matrix = self._matrix()
            if matrix is not None:
                return matrix[positions]
            return np.asarray(self.lexical.vectors[positions], dtype=np.float32)
        ids = [self.lexical.ids[p] for p in positions]
        got = self.store.get_text_vectors(ids)
        dim = len(next(iter(got.values()))) if got else 1
        return np.stack([got.get(pid, np.zeros(dim, dtype=np.float32)) for pid in ids])

    def _matrix(self) -> np.ndarray | None:
        """The local float16 vectors as one float32 array in memory, for a catalog of at most `exact_scan_max`
        products (30 MB at 20,000): converting the float16 rows at each query would cost far more than the scan
        itself. None for larger catalogs, whose rows are read from the memory map as needed."""
        lex = self.lexical
        if lex.vectors is None or len(lex) > self.exact_scan_max:
            return None
        cached = self._f32
        if cached is None or cached[0] is not lex:  # built once per loaded index
            cached = self._f32 = (lex, np.asarray(lex.vectors, dtype=np.float32))
        return cached[1]

    def _title_match(self, query: str, positions: list[int]) -> np.ndarray:
        terms = set(self.lexical.tokenize(query))
        if not terms:
            return np.zeros(len(positions))
        return np.array([len(terms & self.lexical.title_terms(p)) / len(terms) for p in positions])

    def _image_sims(
        self,
        query: str,
        image: str | Path | None,
        filters: Filters | None,
        pool: int,
        cands: set[int],
        restrict_to: list[str] | None,
    ) -> dict[int, float] | None:
        """Image similarity by position; None when the image path is not in play."""
        if image is not None and self.image_encoder is None:
            raise ImagePathDisabled()
        if self.image_encoder is None:
            return None
        total = self.store.image_count()
        if total == 0:
            if image is not None:
                raise ValueError("no product images are indexed: run `shop-retrieval index` with SHOP_IMAGE_ROOT set")
            return None
        if image is not None:
            vec = self.image_encoder.embed_images([image])[0]
        else:
            vec = self.image_encoder.embed_texts([query])[0]
        k = pool if restrict_to is None else total
        sims = {}
        for hit in self.store.query_image(vec, k, filters):
            pos = self.lexical.position.get(hit.id)
            if pos is not None and (restrict_to is None or pos in cands):
                sims[pos] = hit.similarity
        return sims
