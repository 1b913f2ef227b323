"""Filters hold inside the store query; hybrid fusion unites lexical and dense candidates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval.filters import FilterError, Filters
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.search import FusionWeights, SearchEngine
from retrieval.store import VectorStore
from tests.unit.conftest import SMALL_CATALOG

FILTER_CASES = [
    Filters(max_price=60),
    Filters(min_price=100, max_price=140),
    Filters(brand="trail"),
    Filters(color=["RED", "black"]),
    Filters(category="footwear"),
    Filters(category="mugs"),
    Filters(in_stock=True),
    Filters(min_rating=4.5),
    Filters(category="sneakers", in_stock=True, max_price=100),
]


def _passes(p: Product, f: Filters) -> bool:
    checks = [
        f.min_price is None or (p.price is not None and p.price >= f.min_price),
        f.max_price is None or (p.price is not None and p.price <= f.max_price),
        not f.brand or (p.brand or "").lower() in f.brand,
        not f.color or (p.color or "").lower() in f.color,
        not f.category or any(c.lower() in f.category for c in p.category_path),
        f.in_stock is None or p.in_stock == f.in_stock,
        f.min_rating is None or (p.rating is not None and p.rating >= f.min_rating),
    ]
    return all(checks)


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: f.model_dump_json(exclude_none=True))
@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid", "full"])
@pytest.mark.parametrize("scan", [0, 20_000], ids=["chroma-where", "exact-scan"])
def test_every_result_passes_the_filter_and_every_match_can_be_found(
    engine: SearchEngine, filters: Filters, mode: str, scan: int
) -> None:
    engine.exact_scan_max = scan
    expected = {p.id for p in SMALL_CATALOG if _passes(p, filters)}
    # A query that matches everything lexically, so bm25 can see every product too.
    query = " ".join(p.title for p in SMALL_CATALOG)
    got = engine.search(query, filters=filters, k=20, mode=mode)  # type: ignore[arg-type]
    ids = {r.product.id for r in got}
    assert ids <= expected
    assert ids == expected  # filtered in the query, not trimmed from an unfiltered top-k


def test_filter_reaches_beyond_the_unfiltered_top_k(engine: SearchEngine) -> None:
    unfiltered = [r.product.id for r in engine.search("running shoes", k=2, mode="hybrid")]
    assert "p5" not in unfiltered
    got = engine.search("running shoes", k=2, filters=Filters(category="mugs"), mode="hybrid")
    assert [r.product.id for r in got] == ["p5"]


class CountingStore:
    """The real store, counting its nearest-neighbour queries."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.text_queries = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def query_text(self, *args: object, **kw: object) -> object:
        self.text_queries += 1
        return self.inner.query_text(*args, **kw)  # type: ignore[arg-type]


def test_a_filter_leaving_few_products_scans_them_exactly(engine: SearchEngine) -> None:
    counting = CountingStore(engine.store)
    engine.store = counting  # type: ignore[assignment]
    rng = np.random.default_rng(7)
    wide = [f for f in FILTER_CASES if sum(_passes(p, f) for p in SMALL_CATALOG) > 4]
    assert 0 < len(wide) < len(FILTER_CASES)
    for seed in range(5):
        vec = rng.standard_normal(128).astype(np.float32)
        vec /= np.linalg.norm(vec)
        for f in FILTER_CASES:
            mask = engine.lexical.mask(f)
            engine.exact_scan_max = 0
            chroma = engine._nearest(vec, 2, f, mask)
            engine.exact_scan_max = 4
            scanned = engine._nearest(vec, 2, f, mask)
            assert set(scanned) == set(chroma), (seed, f)
    # Only the filters leaving more than 4 products asked Chroma a second time; no filter always asks it.
    assert counting.text_queries == 5 * (len(FILTER_CASES) + len(wide))
    engine._nearest(vec, 2, None, None)
    assert counting.text_queries == 5 * (len(FILTER_CASES) + len(wide)) + 1


def test_a_small_catalog_is_scanned_exactly_without_filters(engine: SearchEngine) -> None:
    counting = CountingStore(engine.store)
    engine.store = counting  # type: ignore[assignment]
    rng = np.random.default_rng(11)
    n = len(engine.lexical)
    for _ in range(5):
        vec = rng.standard_normal(128).astype(np.float32)
        vec /= np.linalg.norm(vec)
        engine.exact_scan_max = 0
        chroma = engine._nearest(vec, 3, None, None)
        engine.exact_scan_max = n
        scanned = engine._nearest(vec, 3, None, None)
        assert set(scanned) == set(chroma)
    assert counting.text_queries == 5  # only the exact_scan_max=0 calls asked Chroma
    results = engine.search("running shoes", k=3, mode="full")
    assert results and counting.text_queries == 5
    engine.exact_scan_max = n - 1  # one product more than a scan covers: Chroma's index answers
    engine.search("running shoes", k=3, mode="full")
    assert counting.text_queries == 6


def test_filters_build_names_each_problem_plainly() -> None:
    assert Filters.build(brand="Trail", in_stock=None) == Filters(brand=["trail"])
    with pytest.raises(FilterError) as err:
        Filters.build(min_price=50, max_price=10)
    assert str(err.value) == "min_price 50.0 is above max_price 10.0"
    with pytest.raises(FilterError) as err:
        Filters.build(min_rating=7, max_price=-1, colour="red")
    text = str(err.value)
    assert "min_rating: Input should be less than or equal to 5" in text
    assert "max_price: Input should be greater than or equal to 0" in text
    assert "colour: unknown field" in text
    assert "pydantic.dev" not in text and "\n" not in text


def test_filters_validate() -> None:
    with pytest.raises(ValueError, match="min_price"):
        Filters(min_price=50, max_price=10)
    with pytest.raises(ValueError):
        Filters(min_rating=7)
    where = Filters(brand="Trail", max_price=10).to_where()
    assert where == {"$and": [{"price": {"$lte": 10}}, {"brand_lc": {"$in": ["trail"]}}]}


class ConceptEncoder:
    """A fake 'semantic' encoder: synonyms share an axis, so it finds what BM25 cannot."""

    AXES = [("sneaker", "running shoe", "trainer"), ("mug", "cup"), ("backpack", "rucksack", "daypack")]

    def __init__(self) -> None:
        self.dim = len(self.AXES) + 1
        self.model_id = "concept"

    def embed_batch(self, texts: Sequence[str], progress: object = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            t = t.lower()
            for axis, words in enumerate(self.AXES):
                out[i, axis] = sum(t.count(w) for w in words)
            out[i, -1] = 0.1
            out[i] /= np.linalg.norm(out[i])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]


@pytest.fixture
def concept_engine(store: VectorStore, tmp_path: Path) -> SearchEngine:
    catalog = [
        Product(id="s1", title="Trail running shoe", price=80),
        Product(id="s2", title="Sneaker ZX-9000 limited", price=120),
        Product(id="s3", title="Enamel camping cup", price=9),
        Product(id="s4", title="Leather rucksack", price=70),
    ]
    enc = ConceptEncoder()
    Indexer(store, enc, tmp_path / "lex", show_progress=False).index(catalog)
    return SearchEngine(store, LexicalIndex.load(tmp_path / "lex"), enc)


def test_hybrid_unites_lexical_and_dense_candidates(concept_engine: SearchEngine) -> None:
    lexical_only = {r.product.id for r in concept_engine.search("zx 9000 sneaker", k=2, mode="bm25")}
    assert lexical_only == {"s2"}  # BM25 does not know that a running shoe is a sneaker
    dense = [r.product.id for r in concept_engine.search("zx 9000 sneaker", k=2, mode="dense")]
    assert set(dense) == {"s1", "s2"}
    hybrid = concept_engine.search("zx 9000 sneaker", k=2, mode="hybrid")
    assert [r.product.id for r in hybrid][0] == "s2"  # both signals agree on the exact model
    assert {r.product.id for r in hybrid} == {"s1", "s2"}
    w = FusionWeights()
    for r in hybrid:
        b = r.breakdown
        assert b.relevance == pytest.approx(w.lexical * b.lexical + w.dense * b.dense, abs=1e-6)
        assert r.score == b.final


def test_dense_score_is_filled_for_lexical_only_candidates(concept_engine: SearchEngine) -> None:
    got = {r.product.id: r.breakdown for r in concept_engine.search("rucksack zx", k=4, mode="hybrid")}
    assert got["s2"].lexical > 0 and got["s2"].dense > 0  # cosine computed even if not in the dense top-k
    assert got["s4"].dense == pytest.approx(1.0, abs=0.02)


def test_restrict_to_ranks_only_the_given_products(engine: SearchEngine) -> None:
    got = engine.search("coffee", k=10, mode="hybrid", restrict_to=["p5", "p1", "unknown"])
    assert [r.product.id for r in got] == ["p5", "p1"]


def test_empty_query_and_bad_mode_are_rejected(engine: SearchEngine) -> None:
    with pytest.raises(ValueError, match="query text or an image"):
        engine.search("  ")
    with pytest.raises(ValueError, match="unknown mode"):
        engine.search("shoes", mode="magic")  # type: ignore[arg-type]
    assert engine.search("zzzzqqq unknownword", mode="bm25") == []


def test_best_similarity_is_the_highest_raw_cosine_of_the_given_products(engine: SearchEngine) -> None:
    ids = ["p1", "p5", "unknown"]
    q = engine.encoder.embed_query("running shoes")
    vectors = engine.get_text_vectors(ids)
    expected = max(float(np.asarray(v, dtype=np.float32) @ q) for v in vectors.values())
    assert set(vectors) == {"p1", "p5"}
    assert engine.best_similarity("running shoes", ids) == pytest.approx(expected, abs=1e-5)
    assert engine.best_similarity("running shoes", ["p1"]) <= engine.best_similarity("running shoes", ids)
    assert engine.best_similarity("running shoes", ["unknown"]) == 0.0
