"""BM25 over product text (bm25s), persisted beside the vectors, with the same filters as Chroma."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from retrieval import sqlite
from retrieval.filters import MAX_CATEGORY_DEPTH, Filters, product_metadata
from retrieval.product import Product

_TOKEN = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*")
_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were will with "
    "your you our we i me my".split()
)
INDEX_VERSION = 2
_CATEGORICAL = ("brand_lc", "color_lc", *(f"cat_{i}" for i in range(MAX_CATEGORY_DEPTH)))


class Tokenizer:
    """Lowercase word tokens, English stopwords removed, Snowball-stemmed when PyStemmer is present."""

    def __init__(self) -> None:
        try:
            import Stemmer

            self._stem = Stemmer.Stemmer("english").stemWords
        except ImportError:  # pragma: no cover - PyStemmer is a dependency
            self._stem = None

    def __call__(self, text: str) -> list[str]:
        words = [w.replace("'", "") for w in _TOKEN.findall(text.lower()) if w not in _STOP]
        return list(self._stem(words)) if self._stem else words


PARSED_CACHE_SIZE = 20_000
"""Parsed product records a loaded index keeps (a few KB each)."""


class LexicalIndex:
    """A BM25 index over a fixed list of products, with filter masks over their metadata."""

    def __init__(
        self,
        ids: list[str],
        bm25: bm25s.BM25,
        metas: list[dict[str, Any]],
        tokenizer: Tokenizer,
        products: Sequence[Product] | None = None,
        docstore: Path | None = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        self.ids = ids
        self.vectors = vectors  # float16 text vectors aligned with ids, for fast rescoring
        self._title_terms: dict[int, frozenset[str]] = {}
        self._products = {p.id: p for p in products} if products is not None else None
        self._docstore_path = docstore
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Parsed records read from the (read-only) docstore: a search reads its ~100 candidates each time.
        self._parsed: OrderedDict[str, Product] = OrderedDict()
        self.position = {pid: i for i, pid in enumerate(ids)}
        self._bm25 = bm25
        self._tokenize = tokenizer
        self._metas = metas
        n = len(ids)
        self._price = np.array([m.get("price", np.nan) for m in metas], dtype=np.float64).reshape(n)
        self._rating = np.array([m.get("rating", np.nan) for m in metas], dtype=np.float64).reshape(n)
        self._in_stock = np.array([bool(m.get("in_stock")) for m in metas], dtype=bool).reshape(n)
        self._values: dict[str, dict[str, list[int]]] = {f: defaultdict(list) for f in _CATEGORICAL}
        for i, m in enumerate(metas):
            for f in _CATEGORICAL:
                if f in m:
                    self._values[f][m[f]].append(i)

    @classmethod
    def build(cls, products: Sequence[Product], vectors: np.ndarray | None = None) -> LexicalIndex:
        """Index `products`; `vectors` (rows aligned with them) enable local dense rescoring."""
        if vectors is not None and len(vectors) != len(products):
            raise ValueError(f"{len(vectors)} vectors for {len(products)} products")
        tokenizer = Tokenizer()
        ids = [p.id for p in products]
        corpus = [tokenizer(p.lexical_text()) or ["__empty__"] for p in products]
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        if corpus:
            bm25.index(corpus, show_progress=False)
        matrix = np.asarray(vectors, dtype=np.float16) if vectors is not None else None
        return cls(ids, bm25, [product_metadata(p) for p in products], tokenizer, products=products, vectors=matrix)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.ids:
            self._bm25.save(str(directory / "bm25"), show_progress=False)
        db_tmp = directory / "products.sqlite.tmp"
        db_tmp.unlink(missing_ok=True)
        with sqlite.connect(db_tmp, wal=False) as db:
            db.execute("CREATE TABLE products (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            db.executemany(
                "INSERT INTO products VALUES (?, ?)",
                ((pid, p.model_dump_json()) for pid, p in self._iter_products()),
            )
        db.close()
        db_tmp.replace(directory / "products.sqlite")
        vec_file = directory / "vectors.npy"
        if self.vectors is not None:
            with open(directory / "vectors.npy.tmp", "wb") as fh:
                np.save(fh, np.asarray(self.vectors, dtype=np.float16))
            (directory / "vectors.npy.tmp").replace(vec_file)
        else:
            vec_file.unlink(missing_ok=True)
        tmp = directory / "docs.json.tmp"
        tmp.write_text(json.dumps({"ids": self.ids, "metas": self._metas}))
        tmp.replace(directory / "docs.json")
        (directory / "manifest.json").write_text(json.dumps({"version": INDEX_VERSION, "count": len(self.ids)}))

    @staticmethod
    def stored_count(directory: str | Path) -> int | None:
        """Products in the saved index, or None when there is no complete index of this version."""
        try:
            manifest = json.loads((Path(directory) / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("version") != INDEX_VERSION or not (Path(directory) / "products.sqlite").is_file():
            return None
        return int(manifest["count"])

    def _iter_products(self) -> Any:
        if self._products is not None:
            yield from self._products.items()
            return
        for start in range(0, len(self.ids), 500):
            yield from self.get_products(self.ids[start : start + 500]).items()

    def get_products(self, ids: Sequence[str]) -> dict[str, Product]:
        """Stored product records by id (unknown ids are left out)."""
        if self._products is not None:
            return {pid: self._products[pid] for pid in ids if pid in self._products}
        if self._docstore_path is None or not ids:
            return {}
        out: dict[str, Product] = {}
        rows: list[tuple[str, str]] = []
        with self._lock:
            for pid in ids:
                if (hit := self._parsed.get(pid)) is not None:
                    self._parsed.move_to_end(pid)
                    out[pid] = hit
            missing = [pid for pid in dict.fromkeys(ids) if pid not in out]
            if missing and self._db is None:
                self._db = sqlite.connect(self._docstore_path, readonly=True)
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                rows += self._db.execute(  # type: ignore[union-attr]
                    f"SELECT id, body FROM products WHERE id IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
        fresh = {pid: Product.model_validate_json(body) for pid, body in rows}  # parsed outside the lock
        with self._lock:
            for pid, product in fresh.items():
                self._parsed[pid] = product
            while len(self._parsed) > PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        out.update(fresh)
        return {pid: out[pid] for pid in ids if pid in out}

    @classmethod
    def load(cls, directory: str | Path) -> LexicalIndex:
        directory = Path(directory)
        docs_file = directory / "docs.json"
        if LexicalIndex.stored_count(directory) is None:
            raise FileNotFoundError(f"no lexical index in {directory}: run `shop-retrieval index` first")
        docs = json.loads(docs_file.read_text())
        bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False) if docs["ids"] else bm25s.BM25()
        vec_file = directory / "vectors.npy"
        vectors = np.load(vec_file, mmap_mode="r") if vec_file.is_file() else None
        return cls(
            docs["ids"], bm25, docs["metas"], Tokenizer(), docstore=directory / "products.sqlite", vectors=vectors
        )

    def tokenize(self, text: str) -> list[str]:
        """The analyser BM25 uses (lowercase, stopwords out, stemmed)."""
        return self._tokenize(text)

    def warm(self) -> int:
        """Parse stored records (as many as the cache keeps) and analyse every title ahead of the first
        searches, so a query the service has not seen yet costs what a repeated one does. Returns how many
        records were parsed."""
        for position in range(len(self.ids)):
            self.title_terms(position)
        if self._products is not None:
            return 0
        parsed = 0
        for start in range(0, min(len(self.ids), PARSED_CACHE_SIZE), 500):
            parsed += len(self.get_products(self.ids[start : min(start + 500, PARSED_CACHE_SIZE)]))
        return parsed

    def title_terms(self, position: int) -> frozenset[str]:
        """Analysed title terms of one product, cached."""
        terms = self._title_terms.get(position)
        if terms is None:
            terms = frozenset(self._tokenize(str(self._metas[position].get("title", ""))))
            self._title_terms[position] = terms
        return terms

    def __len__(self) -> int:
        return len(self.ids)

    def categories(self) -> list[str]:
        """The catalog's top-level categories (lowercase, as filters match them), for a store's category menu."""
        return sorted(c for c, rows in self._values["cat_0"].items() if rows)

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Boolean mask of products that pass the filters (None: no filter)."""
        if filters is None or filters.is_empty():
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        with np.errstate(invalid="ignore"):
            if filters.min_price is not None:
                keep &= self._price >= filters.min_price
            if filters.max_price is not None:
                keep &= self._price <= filters.max_price
            if filters.min_rating is not None:
                keep &= self._rating >= filters.min_rating
        if filters.in_stock is not None:
            keep &= self._in_stock == filters.in_stock
        for field, wanted in (("brand_lc", filters.brand), ("color_lc", filters.color)):
            if wanted:
                keep &= self._any_of(field, wanted)
        if filters.category:
            levels = np.zeros(len(self.ids), dtype=bool)
            for i in range(MAX_CATEGORY_DEPTH):
                levels |= self._any_of(f"cat_{i}", filters.category)
            keep &= levels
        return keep

    def _any_of(self, field: str, values: list[str]) -> np.ndarray:
        hit = np.zeros(len(self.ids), dtype=bool)
        for v in values:
            hit[self._values[field].get(v, [])] = True
        return hit

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every product for the query."""
        vocab = self._bm25.vocab_dict if self.ids else {}
        tokens = [t for t in self._tokenize(query) if t in vocab]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Top-k (id, score) among products passing the mask, best first; zero scores are dropped."""
        scores = self.scores(query)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, int(np.count_nonzero(scores)))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top]
