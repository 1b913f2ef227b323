"""Idempotent upsert: unchanged products cost no embeddings; changes and deletions propagate."""

from __future__ import annotations

from pathlib import Path

from retrieval.encoders import EmbeddingCache, HashingEncoder
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.search import SearchEngine
from retrieval.store import VectorStore
from tests.unit.conftest import SMALL_CATALOG


def _engine(store: VectorStore, encoder: HashingEncoder, lexical_dir: Path) -> SearchEngine:
    return SearchEngine(store, LexicalIndex.load(lexical_dir), encoder)


def test_first_index_embeds_everything_and_reindex_embeds_nothing(
    indexer: Indexer, encoder: HashingEncoder, store: VectorStore
) -> None:
    first = indexer.index(SMALL_CATALOG)
    assert (first.added, first.embedded, first.unchanged) == (8, 8, 0)
    assert store.count() == 8
    texts_before = encoder.texts_embedded
    second = indexer.index(SMALL_CATALOG)
    assert (second.added, second.updated, second.metadata_only, second.unchanged, second.embedded) == (0, 0, 0, 8, 0)
    assert encoder.texts_embedded == texts_before
    assert second.lexical_rebuilt is False


def test_price_change_updates_metadata_without_new_embedding(
    indexer: Indexer, encoder: HashingEncoder, store: VectorStore, tmp_path: Path
) -> None:
    indexer.index(SMALL_CATALOG)
    before = encoder.texts_embedded
    changed = [p.model_copy(update={"price": 10.0}) if p.id == "p3" else p for p in SMALL_CATALOG]
    report = indexer.index(changed)
    assert (report.metadata_only, report.embedded, report.unchanged) == (1, 0, 7)
    assert encoder.texts_embedded == before
    engine = _engine(store, encoder, tmp_path / "lexical")
    assert engine.get_products(["p3"])["p3"].price == 10.0
    from retrieval.filters import Filters

    cheap = engine.search("hiking boots", filters=Filters(max_price=11), mode="hybrid")
    assert [r.product.id for r in cheap] == ["p3"]


def test_text_change_reembeds_only_that_product(
    indexer: Indexer, encoder: HashingEncoder, store: VectorStore, tmp_path: Path
) -> None:
    indexer.index(SMALL_CATALOG)
    before = encoder.texts_embedded
    changed = [p.model_copy(update={"title": "Porcelain tea kettle"}) if p.id == "p5" else p for p in SMALL_CATALOG]
    report = indexer.index(changed)
    assert (report.updated, report.embedded) == (1, 1)
    assert encoder.texts_embedded == before + 1
    hits = _engine(store, encoder, tmp_path / "lexical").search("porcelain kettle", k=3, mode="bm25")
    assert hits[0].product.id == "p5"


def test_deleted_products_leave_the_store_and_the_lexical_index(
    indexer: Indexer, encoder: HashingEncoder, store: VectorStore, tmp_path: Path
) -> None:
    indexer.index(SMALL_CATALOG)
    report = indexer.index([p for p in SMALL_CATALOG if p.id != "p5"])
    assert report.deleted == 1 and store.count() == 7
    engine = _engine(store, encoder, tmp_path / "lexical")
    for mode in ("bm25", "dense", "hybrid", "full"):
        assert "p5" not in [r.product.id for r in engine.search("ceramic coffee mug", k=8, mode=mode)]


def test_no_prune_adds_without_deleting(
    indexer: Indexer, store: VectorStore, tmp_path: Path, encoder: HashingEncoder
) -> None:
    indexer.index(SMALL_CATALOG[:5])
    report = indexer.index(SMALL_CATALOG[5:], prune=False)
    assert report.deleted == 0 and store.count() == 8
    engine = _engine(store, encoder, tmp_path / "lexical")
    assert len(engine.lexical) == 8
    assert engine.search("ceramic mug", k=1, mode="bm25")[0].product.id == "p5"


def test_embedding_cache_spares_a_fresh_store(store: VectorStore, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    enc = HashingEncoder(dim=32)
    Indexer(store, enc, tmp_path / "lex1", cache=cache, show_progress=False).index(SMALL_CATALOG)
    from retrieval.store import make_chroma_client

    other = VectorStore(make_chroma_client("ephemeral"), store.name + "-b")
    enc2 = HashingEncoder(dim=32)
    report = Indexer(other, enc2, tmp_path / "lex2", cache=cache, show_progress=False).index(SMALL_CATALOG)
    assert report.added == 8 and report.embedded == 0 and enc2.texts_embedded == 0
    assert other.count() == 8


def test_a_loaded_index_reads_records_once_and_keeps_the_order_asked(indexer: Indexer, tmp_path: Path) -> None:
    indexer.index(SMALL_CATALOG)
    lexical = LexicalIndex.load(tmp_path / "lexical")
    first = lexical.get_products(["p3", "nope", "p1", "p3"])
    assert list(first) == ["p3", "p1"]
    by_id = {p.id: p for p in SMALL_CATALOG}
    assert first["p3"] == by_id["p3"] and first["p1"] == by_id["p1"]
    again = lexical.get_products(["p1", "p2"])
    assert again["p1"] is first["p1"]  # parsed once, then served from memory
    assert again["p2"] == by_id["p2"]


def test_warming_a_loaded_index_parses_every_record_once_ahead(indexer: Indexer, tmp_path: Path) -> None:
    indexer.index(SMALL_CATALOG)
    lexical = LexicalIndex.load(tmp_path / "lexical")
    assert lexical.warm() == len(SMALL_CATALOG)
    with lexical._lock:
        parsed = dict(lexical._parsed)
    assert set(parsed) == {p.id for p in SMALL_CATALOG}
    assert lexical.get_products(["p2"])["p2"] is parsed["p2"]  # served from memory, not parsed again
    assert lexical.title_terms(0) and len(lexical._title_terms) == len(SMALL_CATALOG)
