"""Builds the retrieval components from settings (no globals, nothing at import time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrieval.clip import ClipEncoder, ImageEncoder
from retrieval.encoders import EmbeddingCache, SentenceTransformerEncoder, TextEncoder, default_text_model_path
from retrieval.indexer import Indexer
from retrieval.lexical import LexicalIndex
from retrieval.onnx_encoder import OnnxEncoder, onnx_pooling
from retrieval.personalization import ProfileStore
from retrieval.search import SearchEngine
from retrieval.settings import RetrievalSettings
from retrieval.store import VectorStore, make_chroma_client


@dataclass
class Components:
    """Long-lived retrieval objects that share one Chroma client and one encoder."""

    settings: RetrievalSettings
    client: Any
    store: VectorStore
    text_encoder: TextEncoder
    image_encoder: ImageEncoder | None
    cache: EmbeddingCache
    profiles: ProfileStore

    def indexer(self, show_progress: bool = True) -> Indexer:
        return Indexer(
            self.store,
            self.text_encoder,
            self.settings.lexical_dir,
            cache=self.cache,
            image_encoder=self.image_encoder,
            image_root=self.settings.image_root,
            show_progress=show_progress,
        )

    def engine(self) -> SearchEngine:
        return SearchEngine(
            self.store,
            LexicalIndex.load(self.settings.lexical_dir),
            self.text_encoder,
            self.image_encoder,
            exact_scan_max=self.settings.exact_scan_max,
        )

    def close(self) -> None:
        self.cache.close()
        self.profiles.close()


def make_text_encoder(settings: RetrievalSettings) -> TextEncoder:
    """The configured text encoder: ONNX when the model converts, else sentence-transformers."""
    path = settings.text_model_path or default_text_model_path()
    if settings.text_backend == "onnx" and onnx_pooling(path) is not None:
        return OnnxEncoder(path, settings.models_dir, settings.text_max_seq_length, settings.batch_size)
    return SentenceTransformerEncoder(path, settings.text_max_seq_length, settings.batch_size)


def build_components(settings: RetrievalSettings, text_encoder: TextEncoder | None = None) -> Components:
    """Open Chroma, load the encoders and the stores named by `settings`."""
    client = make_chroma_client(
        settings.chroma_mode,
        settings.resolved_chroma_path,
        settings.chroma_host,
        settings.chroma_port,
        timeout_s=settings.chroma_timeout_s,
    )
    encoder = text_encoder or make_text_encoder(settings)
    image = ClipEncoder(settings.clip_model_path) if settings.clip_model_path else None
    return Components(
        settings=settings,
        client=client,
        store=VectorStore(client, settings.collection),
        text_encoder=encoder,
        image_encoder=image,
        cache=EmbeddingCache(settings.cache_path),
        profiles=ProfileStore(settings.profiles_path),
    )
