"""Hybrid product search: BM25 + dense text (+ CLIP image) fusion, then reranking."""

from __future__ import annotations

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
from retrieval.store import VectorStore

Mode = Literal["bm25", "dense", "hybrid", "full"]
MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid", "full")


class ScoreBreakdown(BaseModel):
    """Why a product was ranked where it was; `final` orders the results."""

    lexical: float = 0.0
    dense: float = 0.0
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
    """Weights of the relevance signals; lexical scores are scaled to [0, 1] per query."""

    lexical: float = 0.35
    dense: float = 0.65
    image: float = 0.25


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
    ) -> None:
        self.store = store
        self.lexical = lexical
        self.encoder = text_encoder
        self.image_encoder = image_encoder
        self.fusion = fusion or FusionWeights()
        self.reranker = Reranker(rerank or RerankWeights())
        self.pool = pool

    def get_products(self, ids: list[str]) -> dict[str, Product]:
        """Catalog records by id."""
        return self.lexical.get_products(ids)

    def get_text_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored text vectors by id (profiles use them)."""
        return self.store.get_text_vectors(ids)

    @property
    def image_enabled(self) -> bool:
        return self.image_encoder is not None and self.store.image_count() > 0

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
        pool = max(self.pool, k)
        cands = self._candidates(query, filters, pool, mode, image, restrict_to)
        centroid = profile.centroid_array() if profile is not None and mode == "full" else None
        if centroid is not None and restrict_to is None:
            # Items near the shopper's taste join the pool, so an ambiguous query can surface them.
            extra = [h.id for h in self.store.query_text(centroid, pool // 2, filters) if h.id not in cands]
            self._score_extra(extra, query, filters, cands)
        if not cands:
            return []
        products = self.lexical.get_products(list(cands))
        ranked = [Candidate(products[pid], c) for pid, c in cands.items() if pid in products]
        if mode == "full" and profile is not None and profile.centroid:
            vectors = self.store.get_text_vectors([c.product.id for c in ranked])
            for c in ranked:
                c.vector = vectors.get(c.product.id)
        if mode == "full":
            ranked = self.reranker.rerank(ranked, profile, k)
        else:
            ranked.sort(key=lambda c: -c.scores["relevance"])
            for c in ranked:
                c.scores["final"] = c.scores["relevance"]
        return [
            SearchResult(product=c.product, score=c.scores["final"], breakdown=ScoreBreakdown(**c.scores))
            for c in ranked[:k]
        ]

    def _candidates(
        self,
        query: str,
        filters: Filters | None,
        pool: int,
        mode: Mode,
        image: str | Path | None,
        restrict_to: list[str] | None,
    ) -> dict[str, dict[str, float]]:
        use_lex = mode != "dense" and bool(query)
        use_dense = mode != "bm25" and bool(query)
        scores: dict[str, dict[str, float]] = {}
        lex_all: np.ndarray | None = None
        if use_lex:
            mask = self.lexical.mask(filters)
            lex_all = self.lexical.scores(query)
            if mask is not None:
                lex_all = np.where(mask, lex_all, 0.0)
            top = float(lex_all.max()) if lex_all.size else 0.0
            if top > 0:
                lex_all = lex_all / top
            if top > 0 and restrict_to is None:
                k = min(pool, int(np.count_nonzero(lex_all)))
                idx = np.argpartition(-lex_all, k - 1)[:k]
                for i in idx:
                    scores[self.lexical.ids[i]] = {}
        if restrict_to is not None:
            scores = {pid: {} for pid in restrict_to if pid in self.lexical.position}
            if filters is not None:
                keep = self.lexical.mask(filters)
                scores = {pid: s for pid, s in scores.items() if keep is None or keep[self.lexical.position[pid]]}
        qvec: np.ndarray | None = None
        dense: dict[str, float] = {}
        if use_dense:
            qvec = self.encoder.embed_query(query)
            for hit in self.store.query_text(qvec, pool, filters) if restrict_to is None else []:
                dense[hit.id] = hit.similarity
                scores.setdefault(hit.id, {})
        image_sims = self._image_hits(query, image, filters, pool, scores, restrict_to) if mode != "bm25" else {}
        if use_dense and qvec is not None:
            missing = [pid for pid in scores if pid not in dense]
            for pid, vec in self.store.get_text_vectors(missing).items():
                dense[pid] = float(vec @ qvec)
        w = self.fusion
        for pid, s in scores.items():
            s["lexical"] = (
                float(lex_all[self.lexical.position[pid]])
                if lex_all is not None and pid in self.lexical.position
                else 0.0
            )
            s["dense"] = dense.get(pid, 0.0)
            rel = w.lexical * s["lexical"] if use_lex else 0.0
            rel += w.dense * s["dense"] if use_dense else 0.0
            if image_sims:
                s["image"] = image_sims.get(pid, 0.0)
                rel += w.image * s["image"]
            if not use_lex and not use_dense:
                rel = s.get("image", 0.0)
            s["relevance"] = rel
        return scores

    def _score_extra(
        self, ids: list[str], query: str, filters: Filters | None, cands: dict[str, dict[str, float]]
    ) -> None:
        """Relevance of candidates that came from outside the query's own retrieval."""
        if not ids:
            return
        for pid, s in self._candidates(query, filters, len(ids), "hybrid", None, ids).items():
            cands[pid] = s

    def _image_hits(
        self,
        query: str,
        image: str | Path | None,
        filters: Filters | None,
        pool: int,
        scores: dict[str, dict[str, float]],
        restrict_to: list[str] | None,
    ) -> dict[str, float]:
        if image is not None and self.image_encoder is None:
            raise ImagePathDisabled()
        if self.image_encoder is None or self.store.image_count() == 0:
            if image is not None:
                raise ValueError("no product images are indexed: run `shop-retrieval index` with SHOP_IMAGE_ROOT set")
            return {}
        if image is not None:
            vec = self.image_encoder.embed_images([image])[0]
        else:
            vec = self.image_encoder.embed_texts([query])[0]
        sims: dict[str, float] = {}
        for hit in self.store.query_image(vec, pool if restrict_to is None else self.store.image_count(), filters):
            if restrict_to is None or hit.id in scores:
                sims[hit.id] = hit.similarity
                scores.setdefault(hit.id, {})
        return sims
