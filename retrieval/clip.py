"""CLIP image and text encoding through transformers, from a local checkpoint directory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

ProgressFn = Callable[[int], None]


class ImagePathDisabled(RuntimeError):
    """Raised when an image feature is used but no CLIP checkpoint is configured."""

    def __init__(self) -> None:
        super().__init__(
            "image search is off: no CLIP checkpoint configured. Set SHOP_CLIP_MODEL_PATH to a local "
            "CLIP directory (config.json, weights, tokenizer, preprocessor_config.json); text search still works."
        )


@runtime_checkable
class ImageEncoder(Protocol):
    """Embeds images and text into one shared, L2-normalised space."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_images(self, images: Sequence[str | Path], progress: ProgressFn | None = None) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


class ClipEncoder:
    """`CLIPModel` with its tokenizer and image processor, loaded offline from `path`."""

    def __init__(self, path: str | Path, batch_size: int = 16) -> None:
        import torch

        from retrieval.hf import transformers_names

        AutoTokenizer, CLIPImageProcessor, CLIPModel = transformers_names(  # noqa: N806
            "AutoTokenizer", "CLIPImageProcessor", "CLIPModel"
        )

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no CLIP checkpoint at {path}: config.json is missing")
        self._torch = torch
        self._model = CLIPModel.from_pretrained(str(path), local_files_only=True).eval()
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._processor = CLIPImageProcessor.from_pretrained(str(path), local_files_only=True)
        self.dim = int(self._model.config.projection_dim)
        self.model_id = f"clip:{path.name}"
        self.batch_size = batch_size
        self._max_len = int(self._model.config.text_config.max_position_embeddings)
        self._lock = threading.Lock()

    def embed_images(self, images: Sequence[str | Path], progress: ProgressFn | None = None) -> np.ndarray:
        from PIL import Image, ImageOps

        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = []
            for item in images[start : start + self.batch_size]:
                try:
                    with Image.open(item) as img:
                        batch.append(ImageOps.exif_transpose(img).convert("RGB"))
                except OSError as exc:
                    raise ValueError(f"cannot read image {item}: {exc}") from exc
            pixels = self._processor(images=batch, return_tensors="pt")["pixel_values"]
            with self._lock, self._torch.inference_mode():
                feats = self._model.get_image_features(pixel_values=pixels)
            chunks.append(_normalise(_as_array(feats)))
            if progress:
                progress(len(batch))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:  # the tokenizer fails on an empty batch
            return np.zeros((0, self.dim), dtype=np.float32)
        enc = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self._max_len, return_tensors="pt")
        with self._lock, self._torch.inference_mode():
            feats = self._model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        return _normalise(_as_array(feats))


def _as_array(feats: object) -> np.ndarray:
    # transformers 5 may wrap features in an output object; take the pooled projection.
    tensor = getattr(feats, "pooler_output", feats)
    return np.asarray(tensor.float().numpy(), dtype=np.float32)  # type: ignore[attr-defined]


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)
