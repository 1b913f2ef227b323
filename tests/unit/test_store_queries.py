"""Nearest-neighbour queries batched per filter give each caller what a lone query gives it."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from retrieval.filters import Filters
from retrieval.store import Hit, VectorStore, _Query, _query_many
from tests.unit.conftest import SMALL_CATALOG

DIM = 16
# (query seed, k, filters): random vectors, so no two products tie for a place.
ASKS: list[tuple[int, int, Filters | None]] = [
    (1, 3, None),
    (2, 6, Filters(max_price=100)),
    (3, 1, None),
    (4, 2, Filters(brand="Swift")),
    (5, 7, None),
    (6, 2, None),
]


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.upsert_text(SMALL_CATALOG, np.stack([vector(100 + i) for i in range(len(SMALL_CATALOG))]))
    return store


class CountingCollection:
    """A real Chroma collection that records how many query vectors each call carried."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def query(self, **kw: Any) -> Any:
        self.calls.append(len(kw["query_embeddings"]))
        return self.inner.query(**kw)


def test_one_call_per_distinct_filter_and_each_answer_as_if_alone(filled: VectorStore) -> None:
    queries = [_Query(vector(seed), k, f.to_where() if f else None) for seed, k, f in ASKS]
    alone = [_query_many(filled.text, [q])[0] for q in queries]
    assert [len(h) for h in alone] == [3, 5, 1, 2, 7, 2]  # five products cost at most 100, two are Swift's
    counting = CountingCollection(filled.text)
    assert _query_many(counting, queries) == alone
    assert sorted(counting.calls) == [1, 1, 4]  # max_price, brand, and the four unfiltered in one call


def test_concurrent_searches_each_get_their_own_hits(filled: VectorStore) -> None:
    asks = ASKS * 4
    expected = [filled.query_text(vector(seed), k, f) for seed, k, f in asks]
    got: list[list[Hit] | None] = [None] * len(asks)
    start = threading.Barrier(len(asks))

    def run(i: int) -> None:
        seed, k, filters = asks[i]
        start.wait()
        got[i] = filled.query_text(vector(seed), k, filters)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(asks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected
    queued = filled._text_queries
    assert queued.items == 2 * len(asks) and queued.batches <= queued.items  # every query went through the batcher
    assert filled.query_text(vector(1), 0) == []
