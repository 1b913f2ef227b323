"""Idempotent indexing: upsert by product id and content hash, embed only what changed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from retrieval.clip import ImageEncoder
from retrieval.encoders import EmbeddingCache, TextEncoder, embed_with_cache
from retrieval.lexical import LexicalIndex
from retrieval.product import Product
from retrieval.store import ImageKey, VectorStore


@dataclass
class IndexReport:
    """What one indexing run did."""

    total: int = 0
    added: int = 0
    updated: int = 0
    metadata_only: int = 0
    unchanged: int = 0
    deleted: int = 0
    embedded: int = 0
    images_indexed: int = 0
    images_missing: int = 0
    images_remote: int = 0
    images_failed: int = 0
    lexical_rebuilt: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Indexer:
    """Keeps the vector store and the lexical index in step with a catalog."""

    def __init__(
        self,
        store: VectorStore,
        text_encoder: TextEncoder,
        lexical_dir: str | Path,
        cache: EmbeddingCache | None = None,
        image_encoder: ImageEncoder | None = None,
        image_root: str | Path | None = None,
        show_progress: bool = True,
    ) -> None:
        self.store = store
        self.encoder = text_encoder
        self.lexical_dir = Path(lexical_dir)
        self.cache = cache
        self.image_encoder = image_encoder
        self.image_root = Path(image_root) if image_root else None
        self.show_progress = show_progress

    def index(self, products: Sequence[Product], prune: bool = True) -> IndexReport:
        """Bring the store to exactly `products` (prune=True) or add/update them only (prune=False)."""
        started = time.perf_counter()
        report = IndexReport(total=len(products))
        stored = self.store.stored_hashes()
        to_embed: list[Product] = []
        meta_only: list[Product] = []
        for p in products:
            old = stored.get(p.id)
            if old is None:
                report.added += 1
                to_embed.append(p)
            elif old[0] == p.content_hash():
                report.unchanged += 1
            elif old[1] == p.text_hash():
                report.metadata_only += 1
                meta_only.append(p)
            else:
                report.updated += 1
                to_embed.append(p)
        if to_embed:
            report.embedded = self._embed_and_upsert(to_embed)
        if meta_only:
            self.store.update_metadata(meta_only)
        catalog_ids = {p.id for p in products}
        if prune:
            gone = [pid for pid in stored if pid not in catalog_ids]
            if gone:
                self.store.delete(gone)
                report.deleted = len(gone)
        if self.image_encoder is not None:
            self._index_images(products, report, prune)
        changed = bool(to_embed or meta_only or report.deleted)
        report.lexical_rebuilt = self._refresh_lexical(products, prune, changed)
        report.seconds = time.perf_counter() - started
        return report

    def _embed_and_upsert(self, products: list[Product]) -> int:
        texts = {p.text_hash(): p.embedding_text() for p in products}
        with tqdm(total=len(texts), desc="embedding text", unit="product", disable=not self.show_progress) as bar:
            vectors, computed = embed_with_cache(self.encoder, self.cache, texts, progress=bar.update)
        matrix = np.stack([vectors[p.text_hash()] for p in products]) if products else np.zeros((0, 1))
        self.store.upsert_text(products, matrix)
        return computed

    def _refresh_lexical(self, products: Sequence[Product], prune: bool, changed: bool) -> bool:
        if not changed and LexicalIndex.stored_count(self.lexical_dir) == self.store.count():
            return False
        everything = {p.id: p for p in products}
        if not prune:
            try:
                old = LexicalIndex.load(self.lexical_dir)
                everything = {**old.get_products(old.ids), **everything}
            except FileNotFoundError:
                pass
        products = list(everything.values())
        stored = self.store.get_text_vectors([p.id for p in products])
        dim = len(next(iter(stored.values()))) if stored else 0
        vectors = np.stack([stored.get(p.id, np.zeros(dim, dtype=np.float32)) for p in products]) if dim else None
        LexicalIndex.build(products, vectors).save(self.lexical_dir)
        return True

    def _index_images(self, products: Sequence[Product], report: IndexReport, prune: bool) -> None:
        assert self.image_encoder is not None
        stored = self.store.stored_image_keys()
        to_embed: list[tuple[Product, Path, ImageKey]] = []
        meta_only: list[tuple[Product, ImageKey]] = []
        present: set[str] = set()
        for p in products:
            if not p.image:
                continue
            if p.image.startswith(("http://", "https://")):
                report.images_remote += 1
                continue
            path = self._image_path(p)
            if path is None:
                report.images_missing += 1
                continue
            present.add(p.id)
            st = path.stat()
            sig = f"{st.st_size}:{st.st_mtime_ns}"
            old = stored.get(p.id)
            # An unchanged file signature spares reading the file; an unchanged digest spares the encoder.
            digest = old.digest if old and old.sig == sig else _file_digest(path)
            key = ImageKey(sig, digest, p.content_hash())
            if old == key:
                continue
            if old and old.digest == digest:
                meta_only.append((p, key))
            else:
                to_embed.append((p, path, key))
        if meta_only:
            self.store.update_image_metadata([m[0] for m in meta_only], [m[1] for m in meta_only])
        if to_embed:
            self._embed_images(to_embed, report)
        catalog_ids = {p.id for p in products}
        stale = [pid for pid in stored if pid not in present and (prune or pid in catalog_ids)]
        if stale:
            self.store.delete_images(stale)
        if report.images_missing:
            report.notes.append(f"{report.images_missing} product images not found under {self.image_root}")
        if report.images_remote:
            report.notes.append(f"{report.images_remote} product images are remote URLs (not fetched)")

    def _embed_images(self, todo: list[tuple[Product, Path, ImageKey]], report: IndexReport) -> None:
        assert self.image_encoder is not None
        done: list[tuple[Product, ImageKey]] = []
        vectors: list[np.ndarray] = []
        step = 64
        with tqdm(total=len(todo), desc="embedding images", unit="image", disable=not self.show_progress) as bar:
            for start in range(0, len(todo), step):
                batch = todo[start : start + step]
                try:
                    vecs = list(self.image_encoder.embed_images([t[1] for t in batch]))
                    ok = batch
                except ValueError:
                    # One unreadable file must not sink the batch: retry one by one and skip the bad ones.
                    vecs, ok = [], []
                    for item in batch:
                        try:
                            vecs.append(self.image_encoder.embed_images([item[1]])[0])
                            ok.append(item)
                        except ValueError as exc:
                            report.images_failed += 1
                            report.notes.append(f"skipped image of {item[0].id}: {exc}")
                done.extend((t[0], t[2]) for t in ok)
                vectors.extend(vecs)
                bar.update(len(batch))
        if done:
            self.store.upsert_images([d[0] for d in done], np.stack(vectors), [d[1] for d in done])
        report.images_indexed = len(done)

    def _image_path(self, product: Product) -> Path | None:
        assert product.image is not None
        path = Path(product.image)
        if not path.is_absolute() and self.image_root is not None:
            path = self.image_root / path
        return path if path.is_file() else None


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]
