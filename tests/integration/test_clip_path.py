"""The CLIP image path end to end: real photos, a tiny random CLIP, Chroma, the indexer and search."""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from retrieval.clip import ClipEncoder, ImageEncoder, ImagePathDisabled
from retrieval.encoders import HashingEncoder
from retrieval.factory import build_components
from retrieval.filters import Filters
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.search import SearchEngine
from retrieval.settings import RetrievalSettings
from retrieval.store import VectorStore, make_chroma_client

pytestmark = pytest.mark.integration

SHARED_DATA = Path(os.environ.get("SHOP_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
IMAGE_ROOT = SHARED_DATA / "images/clothing-small"
CLASSES = 4
PER_CLASS = 3


def _pick_photos(classes: int = CLASSES, per_class: int = PER_CLASS) -> list[tuple[str, str]]:
    """(relative path, label): the first `per_class` photos of the first `classes` labels, sorted."""
    manifest = IMAGE_ROOT / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"clothing photos not available at {IMAGE_ROOT}")
    with manifest.open(newline="") as fh:
        rows = sorted((r["label"], r["path"]) for r in csv.DictReader(fh))
    by_label: dict[str, list[str]] = {}
    for label, path in rows:
        by_label.setdefault(label, []).append(path)
    picked = []
    for label in sorted(by_label)[:classes]:
        picked.extend((path, label) for path in by_label[label][:per_class])
    assert len(picked) == classes * per_class, "manifest has too few photos for the test"
    return picked


def _products(photos: Sequence[tuple[str, str]]) -> list[Product]:
    return [
        Product(
            id=f"{label}-{i}",
            title=f"{label} {['red', 'blue', 'black'][i % 3]} cotton {label}",
            category_path=["clothing", label],
            price=10.0 + 5 * i,
            stock=3,
            image=path,
        )
        for i, (path, label) in enumerate(photos)
    ]


class CountingImageEncoder:
    """Wraps an ImageEncoder and counts the images and texts it embeds."""

    def __init__(self, inner: ImageEncoder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.images_embedded = 0
        self.texts_embedded = 0

    def embed_images(self, images, progress=None) -> np.ndarray:  # type: ignore[no-untyped-def]
        self.images_embedded += len(images)
        return self.inner.embed_images(images, progress=progress)

    def embed_texts(self, texts) -> np.ndarray:  # type: ignore[no-untyped-def]
        self.texts_embedded += len(texts)
        return self.inner.embed_texts(texts)


@pytest.fixture(scope="module")
def clip(tiny_clip_dir: Path) -> ClipEncoder:
    return ClipEncoder(tiny_clip_dir, batch_size=4)


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, str]]:
    return _pick_photos()


@pytest.fixture
def store() -> VectorStore:
    return VectorStore(make_chroma_client("ephemeral"), f"clip-{uuid.uuid4().hex[:12]}")


def _indexer(store: VectorStore, lexical_dir: Path, image_encoder: ImageEncoder | None) -> Indexer:
    return Indexer(
        store,
        HashingEncoder(),
        lexical_dir,
        image_encoder=image_encoder,
        image_root=IMAGE_ROOT,
        show_progress=False,
    )


def _engine(store: VectorStore, lexical_dir: Path, image_encoder: ImageEncoder | None) -> SearchEngine:
    return SearchEngine(store, LexicalIndex.load(lexical_dir), HashingEncoder(), image_encoder)


# -- the checkpoint ------------------------------------------------------------------------


def test_tiny_clip_loads_and_embeds_normalised_vectors(clip: ClipEncoder, photos: list[tuple[str, str]]) -> None:
    assert isinstance(clip, ImageEncoder)
    assert clip.dim == 16
    assert clip.model_id.startswith("clip:")
    images = clip.embed_images([IMAGE_ROOT / p for p, _ in photos[:5]])
    texts = clip.embed_texts(["a red dress", "black leather shoes", "an unknownword"])
    assert images.shape == (5, 16) and texts.shape == (3, 16)
    assert images.dtype == np.float32 and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    # Same input, same vector (eval mode, no dropout); batching does not change a photo's vector.
    again = clip.embed_images([IMAGE_ROOT / photos[0][0]])
    np.testing.assert_allclose(again[0], images[0], atol=1e-5)
    assert clip.embed_images([]).shape == (0, 16)
    assert clip.embed_texts([]).shape == (0, 16)


def test_clip_encoder_needs_a_checkpoint_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        ClipEncoder(tmp_path)


def test_unreadable_image_is_a_value_error(clip: ClipEncoder, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-photo.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    with pytest.raises(ValueError, match="cannot read image"):
        clip.embed_images([bad])


# -- indexing ------------------------------------------------------------------------------


def test_indexes_every_photo_and_reindex_embeds_nothing(
    store: VectorStore, clip: ClipEncoder, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    products = _products(photos)
    counting = CountingImageEncoder(clip)
    first = _indexer(store, tmp_path / "lex", counting).index(products)
    assert first.added == len(products)
    assert first.images_indexed == len(photos)
    assert first.images_missing == 0
    assert store.image_count() == len(photos)
    assert counting.images_embedded == len(photos)

    second = _indexer(store, tmp_path / "lex", counting).index(products)
    assert second.unchanged == len(products)
    assert second.embedded == 0
    assert second.images_indexed == 0
    assert counting.images_embedded == len(photos), "unchanged photos were embedded again"
    assert store.image_count() == len(photos)


def test_price_change_refreshes_image_metadata_without_reembedding(
    store: VectorStore, clip: ClipEncoder, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    products = _products(photos)
    counting = CountingImageEncoder(clip)
    _indexer(store, tmp_path / "lex", counting).index(products)
    changed = [*products[:-1], products[-1].model_copy(update={"price": 999.0})]
    report = _indexer(store, tmp_path / "lex", counting).index(changed)
    assert report.metadata_only == 1
    assert report.images_indexed == 0  # same pixels: only the image's filter metadata is refreshed
    assert counting.images_embedded == len(photos)
    engine = _engine(store, tmp_path / "lex", clip)
    from retrieval.filters import Filters

    pricey = engine.search(image=IMAGE_ROOT / photos[-1][0], mode="dense", k=3, filters=Filters(min_price=900))
    assert [r.product.id for r in pricey] == [products[-1].id]
    # Dropping a product from the catalog removes its image vector too.
    report = _indexer(store, tmp_path / "lex", counting).index(changed[:-2])
    assert report.deleted == 2
    assert store.image_count() == len(photos) - 2


def test_missing_image_is_counted(
    store: VectorStore, clip: ClipEncoder, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    products = _products(photos)
    ghost = Product(id="ghost-1", title="ghost dress", category_path=["clothing", "dress"], image="nope/missing.jpg")
    report = _indexer(store, tmp_path / "lex", clip).index([*products, ghost])
    assert report.images_missing == 1
    assert report.images_indexed == len(photos)
    assert any("not found" in note for note in report.notes)
    assert store.count() == len(products) + 1, "a product without its photo is still indexed for text"
    assert store.image_count() == len(photos)


# -- search --------------------------------------------------------------------------------


@pytest.fixture
def indexed(
    store: VectorStore, clip: ClipEncoder, photos: list[tuple[str, str]], tmp_path: Path
) -> tuple[SearchEngine, list[Product]]:
    products = _products(photos)
    _indexer(store, tmp_path / "lex", clip).index(products)
    return _engine(store, tmp_path / "lex", clip), products


def test_photo_search_finds_its_own_product_first(indexed: tuple[SearchEngine, list[Product]]) -> None:
    engine, products = indexed
    for product in products[::PER_CLASS]:  # one photo of each class
        assert product.image is not None
        results = engine.search(image=IMAGE_ROOT / product.image, mode="hybrid", k=5)
        assert results, f"no results for the photo of {product.id}"
        top = results[0]
        assert top.product.id == product.id
        assert top.breakdown.image == pytest.approx(1.0, abs=1e-4)
        assert top.score == pytest.approx(1.0, abs=1e-4)
        assert all(r.breakdown.image is not None for r in results)
        assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


def test_photo_search_accepts_a_string_path_and_respects_filters(
    indexed: tuple[SearchEngine, list[Product]],
) -> None:
    engine, products = indexed
    hat = next(p for p in products if p.category == "hat")
    assert hat.image is not None
    results = engine.search(image=str(IMAGE_ROOT / hat.image), mode="hybrid", k=10, filters=Filters(category="dress"))
    assert results
    assert all(r.product.category == "dress" for r in results)
    assert hat.id not in {r.product.id for r in results}


def test_photo_search_with_an_unreadable_photo_fails_clearly(indexed: tuple[SearchEngine, list[Product]]) -> None:
    engine, _ = indexed
    with pytest.raises(ValueError, match="cannot read image"):
        engine.search(image=IMAGE_ROOT / "no-such-photo.jpg", mode="hybrid")


def test_text_to_image_search_carries_image_scores(indexed: tuple[SearchEngine, list[Product]]) -> None:
    engine, products = indexed
    for mode in ("hybrid", "dense", "full"):
        results = engine.search("red dress", mode=mode, k=5)  # type: ignore[arg-type]
        assert results, mode
        assert all(r.breakdown.image is not None for r in results), mode
        assert all(-1.0 - 1e-4 <= r.breakdown.image <= 1.0 + 1e-4 for r in results if r.breakdown.image is not None)
    # BM25 alone never consults the image collection.
    assert all(r.breakdown.image is None for r in engine.search("red dress", mode="bm25", k=5))


def test_without_image_encoder_photo_search_is_disabled(
    store: VectorStore, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    products = _products(photos)
    report = _indexer(store, tmp_path / "lex", None).index(products)
    assert report.images_indexed == 0 and report.images_missing == 0
    assert store.image_count() == 0
    engine = _engine(store, tmp_path / "lex", None)
    assert not engine.image_enabled
    with pytest.raises(ImagePathDisabled, match="SHOP_CLIP_MODEL_PATH"):
        engine.search(image=IMAGE_ROOT / photos[0][0], mode="hybrid")
    results = engine.search("red dress", mode="hybrid", k=5)
    assert results
    assert results[0].product.category == "dress"
    assert all(r.breakdown.image is None for r in results)


# -- settings and factory ------------------------------------------------------------------


def test_settings_reject_clip_dir_without_config(tmp_path: Path) -> None:
    not_clip = tmp_path / "not-clip"
    not_clip.mkdir()
    (not_clip / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValidationError, match="SHOP_CLIP_MODEL_PATH"):
        RetrievalSettings(clip_model_path=not_clip, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="SHOP_CLIP_MODEL_PATH"):
        RetrievalSettings(clip_model_path=tmp_path / "does-not-exist", _env_file=None)  # type: ignore[call-arg]


def test_settings_pick_clip_from_environment(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_CLIP_MODEL_PATH", str(tiny_clip_dir))
    settings = RetrievalSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.clip_model_path == tiny_clip_dir


def test_factory_builds_the_image_path_from_settings(
    tiny_clip_dir: Path, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    settings = RetrievalSettings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "shop",
        chroma_mode="ephemeral",
        collection=f"fac-{uuid.uuid4().hex[:12]}",
        clip_model_path=tiny_clip_dir,
        image_root=IMAGE_ROOT,
    )
    components = build_components(settings, text_encoder=HashingEncoder())
    try:
        assert isinstance(components.image_encoder, ClipEncoder)
        products = _products(photos)
        report = components.indexer(show_progress=False).index(products)
        assert report.images_indexed == len(photos)
        engine = components.engine()
        assert engine.image_enabled
        target = products[-1]
        assert target.image is not None
        results = engine.search(image=IMAGE_ROOT / target.image, mode="hybrid", k=3)
        assert results[0].product.id == target.id
    finally:
        components.close()


def test_corrupt_and_remote_images_are_counted_and_the_rest_indexed(
    store: VectorStore, clip: ClipEncoder, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    products = [
        *_products(photos),
        Product(id="broken", title="broken photo", image=str(broken)),
        Product(id="remote", title="remote photo", image="https://example.invalid/x.jpg"),
    ]
    report = _indexer(store, tmp_path / "lex", clip).index(products)
    assert report.images_indexed == len(photos)
    assert report.images_failed == 1 and report.images_remote == 1 and report.images_missing == 0
    assert any("broken" in note for note in report.notes)
    assert store.count() == len(products)  # text indexing is unaffected by a bad photo
    assert store.image_count() == len(photos)


def test_photo_search_in_bm25_mode_is_rejected(indexed: tuple[SearchEngine, list[Product]]) -> None:
    engine, products = indexed
    with pytest.raises(ValueError, match="bm25"):
        engine.search(image=IMAGE_ROOT / products[0].image, mode="bm25")  # type: ignore[operator]


def test_photo_search_without_indexed_images_says_so(
    store: VectorStore, clip: ClipEncoder, photos: list[tuple[str, str]], tmp_path: Path
) -> None:
    _indexer(store, tmp_path / "lex", None).index(_products(photos))
    engine = _engine(store, tmp_path / "lex", clip)
    with pytest.raises(ValueError, match="no product images are indexed"):
        engine.search(image=IMAGE_ROOT / photos[0][0], mode="hybrid")
    assert engine.search("red dress", mode="hybrid", k=3)  # text still works
