"""Chroma vector store: one collection for text vectors, one for image vectors.

Metadata holds the filterable fields and the content hashes; full product records live in the
lexical index's docstore beside the BM25 files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np

from retrieval.batching import MicroBatcher
from retrieval.filters import Filters, product_metadata
from retrieval.product import Product

ChromaMode = Literal["persistent", "http", "ephemeral"]
_BATCH = 1_000
DEFAULT_HTTP_TIMEOUT_S = 10.0
# What a Chroma server that is down, hung or restarting makes the HTTP client raise.
_SERVER_AWAY = (httpx.TransportError, OSError)


def bound_http_timeout(client: Any, timeout_s: float) -> None:
    """Chroma's HttpClient sends its requests with no timeout (a hung server holds a search, and its thread, forever):
    give its HTTP session one. The session is not public API: when it is not where it was, nothing changes."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(timeout_s)


class VectorStoreUnavailable(RuntimeError):
    """The Chroma server does not answer, or not within the client's timeout."""


def make_chroma_client(
    mode: ChromaMode,
    path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
) -> Any:
    """A Chroma client: embedded on disk, a server over HTTP (each request bounded by `timeout_s`), or in memory
    (tests)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if mode == "persistent":
        if path is None:
            raise ValueError("chroma_path must be set for the persistent Chroma mode")
        Path(path).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    if mode == "http":
        client = chromadb.HttpClient(host=host, port=port, settings=chroma_settings)
        bound_http_timeout(client, timeout_s)
        return client
    if mode == "ephemeral":
        return chromadb.EphemeralClient(settings=chroma_settings)
    raise ValueError(f"unknown chroma_mode {mode!r}; use persistent, http or ephemeral")


@dataclass(frozen=True)
class Hit:
    """A product id and its cosine similarity to the query."""

    id: str
    similarity: float


class VectorStore:
    """Products with their text vectors, and (optionally) image vectors, in Chroma."""

    def __init__(self, client: Any, name: str = "catalog") -> None:
        if not 3 <= len(name) <= 500:
            raise ValueError(f"collection name {name!r} must have 3-500 characters")
        self.client = client
        self.name = name
        config = {"hnsw": {"space": "cosine", "ef_construction": 200, "ef_search": 400}}
        self.text = client.get_or_create_collection(f"{name}-text", configuration=config, embedding_function=None)
        self.image = client.get_or_create_collection(f"{name}-image", configuration=config, embedding_function=None)
        # Chroma runs one query at a time; concurrent searches share calls (one filter pass for the batch).
        self._text_queries: MicroBatcher[_Query, list[Hit]] = MicroBatcher(partial(_query_many, self.text))
        self._image_queries: MicroBatcher[_Query, list[Hit]] = MicroBatcher(partial(_query_many, self.image))

    # -- writing -------------------------------------------------------------------------

    def upsert_text(self, products: Sequence[Product], vectors: np.ndarray) -> None:
        """Insert or replace products with their text vectors; metadata carries the hashes."""
        for start in range(0, len(products), _BATCH):
            chunk = products[start : start + _BATCH]
            self.text.upsert(
                ids=[p.id for p in chunk],
                embeddings=np.asarray(vectors[start : start + _BATCH], dtype=np.float32),
                metadatas=[_text_metadata(p) for p in chunk],
            )

    def update_metadata(self, products: Sequence[Product]) -> None:
        """Refresh stored products whose text did not change (price, stock, ...): no new vectors."""
        for start in range(0, len(products), _BATCH):
            chunk = products[start : start + _BATCH]
            self.text.update(ids=[p.id for p in chunk], metadatas=[_text_metadata(p) for p in chunk])

    def upsert_images(self, products: Sequence[Product], vectors: np.ndarray, keys: Sequence[ImageKey]) -> None:
        """Insert or replace image vectors; metadata carries the filters and the image's identity."""
        for start in range(0, len(products), _BATCH):
            chunk = products[start : start + _BATCH]
            self.image.upsert(
                ids=[p.id for p in chunk],
                embeddings=np.asarray(vectors[start : start + _BATCH], dtype=np.float32),
                metadatas=_image_metadata(chunk, keys[start : start + _BATCH]),
            )

    def update_image_metadata(self, products: Sequence[Product], keys: Sequence[ImageKey]) -> None:
        """Refresh filters and file signatures of images whose pixels did not change."""
        for start in range(0, len(products), _BATCH):
            chunk = products[start : start + _BATCH]
            self.image.update(ids=[p.id for p in chunk], metadatas=_image_metadata(chunk, keys[start : start + _BATCH]))

    def delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _BATCH):
            chunk = list(ids[start : start + _BATCH])
            self.text.delete(ids=chunk)
            self.image.delete(ids=chunk)

    def delete_images(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _BATCH):
            self.image.delete(ids=list(ids[start : start + _BATCH]))

    # -- reading -------------------------------------------------------------------------

    def count(self) -> int:
        with _server_away():
            return int(self.text.count())

    def image_count(self) -> int:
        with _server_away():
            return int(self.image.count())

    def stored_hashes(self) -> dict[str, tuple[str, str]]:
        """id -> (content hash, text hash) of every stored product."""
        out: dict[str, tuple[str, str]] = {}
        total = self.text.count()
        for offset in range(0, total, 5_000):
            got = self.text.get(include=["metadatas"], limit=5_000, offset=offset)
            for pid, meta in zip(got["ids"], got["metadatas"], strict=True):
                out[pid] = (str(meta["content_hash"]), str(meta["text_hash"]))
        return out

    def stored_image_keys(self) -> dict[str, ImageKey]:
        """id -> identity of the stored image vector (file signature, pixel hash, product hash)."""
        out: dict[str, ImageKey] = {}
        total = self.image.count()
        for offset in range(0, total, 5_000):
            got = self.image.get(include=["metadatas"], limit=5_000, offset=offset)
            for pid, meta in zip(got["ids"], got["metadatas"], strict=True):
                out[pid] = ImageKey(str(meta["image_sig"]), str(meta["image_hash"]), str(meta["content_hash"]))
        return out

    def get_text_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), 5_000):
            with _server_away():
                got = self.text.get(ids=list(ids[start : start + 5_000]), include=["embeddings"])
            for pid, v in zip(got["ids"], got["embeddings"], strict=True):
                out[pid] = np.asarray(v, dtype=np.float32)
        return out

    def query_text(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """The k nearest text vectors that pass the filters, nearest first; VectorStoreUnavailable when the Chroma
        server does not answer."""
        if k <= 0:
            return []
        with _server_away():
            return self._text_queries(_Query(vector, k, filters.to_where() if filters else None))

    def query_image(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        """The k nearest image vectors that pass the filters, nearest first (VectorStoreUnavailable as above)."""
        if k <= 0:
            return []
        with _server_away():
            return self._image_queries(_Query(vector, k, filters.to_where() if filters else None))


@contextmanager
def _server_away() -> Iterator[None]:
    """The Chroma server's transport failures (refused, reset, timed out) as VectorStoreUnavailable."""
    try:
        yield
    except _SERVER_AWAY as e:
        raise VectorStoreUnavailable(f"the Chroma server does not answer: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class ImageKey:
    """What identifies a stored image vector: file size+mtime, content digest, and the product hash."""

    sig: str
    digest: str
    content_hash: str


def _image_metadata(products: Sequence[Product], keys: Sequence[ImageKey]) -> list[dict[str, Any]]:
    return [
        {**product_metadata(p), "image_sig": k.sig, "image_hash": k.digest, "content_hash": k.content_hash}
        for p, k in zip(products, keys, strict=True)
    ]


def _text_metadata(p: Product) -> dict[str, Any]:
    return {
        **product_metadata(p),
        "content_hash": p.content_hash(),
        "text_hash": p.text_hash(),
    }


@dataclass(frozen=True)
class _Query:
    vector: np.ndarray
    k: int
    where: dict[str, Any] | None


def _query_many(collection: Any, queries: list[_Query]) -> list[list[Hit]]:
    """Nearest neighbours for each query: one Chroma call per distinct filter, for the largest k asked with it.

    Chroma returns fewer than n_results when fewer match, so no count() round trip is needed; a shorter
    list for a smaller k is the head of the longer one (while k stays within the HNSW beam, ef_search 400).
    """
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        groups.setdefault(json.dumps(q.where, sort_keys=True), []).append(i)
    out: list[list[Hit]] = [[] for _ in queries]
    for members in groups.values():
        res = collection.query(
            query_embeddings=np.stack([np.asarray(queries[i].vector, dtype=np.float32) for i in members]),
            n_results=max(queries[i].k for i in members),
            where=queries[members[0]].where,
            include=["distances"],
        )
        for row, i in enumerate(members):
            ids, dists = res["ids"][row][: queries[i].k], res["distances"][row][: queries[i].k]
            out[i] = [Hit(pid, 1.0 - float(d)) for pid, d in zip(ids, dists, strict=True)]
    return out
