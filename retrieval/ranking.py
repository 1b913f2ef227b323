"""Reranking: query relevance + profile affinity + quality priors, with a diversity penalty."""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from retrieval.personalization import Profile, price_band
from retrieval.product import Product


@dataclass(frozen=True)
class RerankWeights:
    """How much each signal moves the relevance score."""

    personal_vector: float = 0.15
    personal_attributes: float = 0.25
    quality: float = 0.03
    diversity: float = 0.02
    rating_prior_count: float = 20.0
    rating_prior_mean: float = 3.8


@dataclass
class Candidate:
    """A product in the candidate pool with its running scores (and text vector when known)."""

    product: Product
    scores: dict[str, float] = field(default_factory=dict)
    vector: np.ndarray | None = None


class Reranker:
    """Combines the signals and picks results greedily so near-duplicates don't crowd the top."""

    def __init__(self, weights: RerankWeights) -> None:
        self.w = weights

    def quality(self, p: Product) -> float:
        """Prior in about [-1, 1]: Bayesian-shrunk rating, popularity, and known-empty stock."""
        w = self.w
        q = 0.0
        if p.rating is not None:
            n = p.rating_count or 0
            shrunk = (w.rating_prior_count * w.rating_prior_mean + n * p.rating) / (w.rating_prior_count + n)
            q += (shrunk - w.rating_prior_mean) / 1.2
        if p.rating_count:
            q += min(math.log10(1 + p.rating_count) / 6.0, 1.0) * 0.5
        if p.stock is not None and p.stock == 0:
            q -= 1.0
        return q

    def personal(self, c: Candidate, profile: Profile) -> float:
        """The profile's affinity: q.p (item vector . shopper centroid) + b.u (attributes . affinities)."""
        w = self.w
        score = 0.0
        centroid = profile.centroid_array()
        if centroid is not None and c.vector is not None:
            score += w.personal_vector * float(c.vector @ centroid)
        p = c.product
        # Affinities relative to the shopper's strongest one: their favourite category scores 1.
        cat = _relative(profile.categories, [x.lower() for x in p.category_path])
        brand = _relative(profile.brands, [p.brand.lower()] if p.brand else [])
        band = _relative(profile.price_bands, [price_band(p.price) or ""])
        score += w.personal_attributes * (cat + 0.5 * brand + 0.5 * band)
        return score

    def rerank(self, cands: list[Candidate], profile: Profile | None, k: int) -> list[Candidate]:
        """Order candidates by relevance + personal + quality, minus a redundancy penalty (lazy greedy)."""
        personalise = profile is not None and not profile.is_empty()
        base: list[float] = []
        for c in cands:
            c.scores["quality"] = self.quality(c.product)
            c.scores["personal"] = self.personal(c, profile) if personalise and profile else 0.0
            base.append(c.scores["relevance"] + c.scores["personal"] + self.w.quality * c.scores["quality"])
        # Penalties only grow as items are chosen, so a popped entry whose penalty is current is the best.
        heap = [(-b, i, 0) for i, b in enumerate(base)]
        heapq.heapify(heap)
        seen: dict[tuple[str, str], int] = defaultdict(int)
        chosen: list[Candidate] = []
        while heap and len(chosen) < k:
            _, i, n_at = heapq.heappop(heap)
            facet = _facet(cands[i].product)
            n = seen[facet]
            if n != n_at:
                heapq.heappush(heap, (-(base[i] - self._penalty(n)), i, n))
                continue
            cands[i].scores["diversity"] = -self._penalty(n)
            cands[i].scores["final"] = base[i] - self._penalty(n)
            seen[facet] += 1
            chosen.append(cands[i])
        rest = [cands[i] for _, i, _ in heap]
        for _, i, _ in heap:
            cands[i].scores["diversity"] = -self._penalty(seen[_facet(cands[i].product)])
            cands[i].scores["final"] = base[i] + cands[i].scores["diversity"]
        return chosen + sorted(rest, key=lambda c: -c.scores["final"])

    def _penalty(self, n: int) -> float:
        return self.w.diversity * n / (n + 1)


def _relative(affinity: dict[str, float], keys: list[str]) -> float:
    if not affinity:
        return 0.0
    return max((affinity.get(k, 0.0) for k in keys), default=0.0) / max(affinity.values())


def _facet(p: Product) -> tuple[str, str]:
    return ((p.brand or "").lower(), (p.category or "").lower())
