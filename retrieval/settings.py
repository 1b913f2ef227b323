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

    data_dir: Path = Field(default=Path(".cache/shop"), description="root for indexes, caches and profiles")
    chroma_mode: ChromaMode = "persistent"
    chroma_path: Path | None = Field(default=None, description="embedded Chroma directory; default data_dir/chroma")
    chroma_host: str = "127.0.0.1"
    chroma_port: int = Field(default=8000, ge=1, le=65535)
    collection: str = Field(default="catalog", min_length=3, max_length=60)
    text_model_path: Path | None = Field(default=None, description="sentence-transformers dir; default MiniLM")
    text_max_seq_length: int = Field(default=64, ge=16, le=512, description="tokens embedded per product")
    text_backend: Literal["onnx", "torch"] = Field(
        default="onnx", description="onnx: converted once, faster on CPU; torch: sentence-transformers"
    )
    clip_model_path: Path | None = Field(default=None, description="local CLIP checkpoint; unset: image path off")
    image_root: Path | None = Field(default=None, description="directory that product image names resolve in")
    batch_size: int = Field(default=32, ge=1, le=1024)

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
