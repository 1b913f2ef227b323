"""Intent features: the mean-pooled token states of several MiniLM layers, each L2-normalised, concatenated.

The lower layers keep the surface wording the last layer abstracts away; a linear head over layers 1-6 routes
more accurately than one over the sentence embedding alone (CLINC150, docs/performance.md), at the same cost
per query: one forward pass. Run with onnxruntime (converted once into a cache dir) or with torch.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders import ProgressFn, default_text_model_path
from retrieval.hf import transformers_names
from retrieval.onnx_encoder import trace_to_onnx

DEFAULT_LAYERS = (1, 2, 3, 4, 5, 6)
DEFAULT_MAX_SEQ_LENGTH = 32
DEFAULT_MODEL_CACHE = Path(".cache/intents/models")


def content_fingerprint(path: Path) -> str:
    """A hash of every file's bytes: two fine-tunes of one model share names and sizes, never content."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file() and not f.name.startswith(".") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(path)).encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


def layer_pool_module(model: Any, layers: Sequence[int]) -> Any:
    """A torch module (input_ids, attention_mask) -> the concatenated, per-layer normalised mean pools."""
    import torch

    class LayerPool(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            states = self.inner(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            mask = attention_mask.unsqueeze(-1).to(states.hidden_states[0].dtype)
            count = mask.sum(1).clamp(min=1e-9)
            pools = [
                torch.nn.functional.normalize((states.hidden_states[i] * mask).sum(1) / count, dim=-1) for i in layers
            ]
            # Divided so the whole vector has unit norm, as the TextEncoder protocol promises.
            return torch.cat(pools, dim=-1) / float(len(layers)) ** 0.5

    return LayerPool()


def load_transformer(path: Path) -> tuple[Any, Any]:
    """(tokenizer, model) of a local BERT-family directory, never from the hub."""
    AutoModel, AutoTokenizer = transformers_names("AutoModel", "AutoTokenizer")  # noqa: N806
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager")
    return tokenizer, model


def export_onnx(path: Path, layers: Sequence[int], target: Path) -> None:
    """Trace the layer-pooling graph into one ONNX file (written atomically)."""

    print(f"converting {path} to ONNX (once) -> {target}", file=sys.stderr)
    started = time.perf_counter()
    tokenizer, model = load_transformer(path)
    module = layer_pool_module(model.eval(), layers).eval()
    trace_to_onnx(module, tokenizer, target, "features", started)


class LayerPoolEncoder:
    """A TextEncoder over several layers of a local sentence-transformers/BERT model; loads on first use."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        layers: Sequence[int] = DEFAULT_LAYERS,
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        cache_dir: str | Path = DEFAULT_MODEL_CACHE,
        backend: str = "onnx",
        batch_size: int = 64,
        threads: int = 1,
    ) -> None:
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be 'onnx' or 'torch', got {backend!r}")
        if not layers:
            raise ValueError("layers must name at least one hidden layer")
        self.path = Path(path) if path else default_text_model_path()
        if not self.path.is_dir():
            raise FileNotFoundError(f"text model directory not found: {self.path}")
        self.layers = tuple(int(i) for i in layers)
        self.max_seq_length = max_seq_length
        self.cache_dir = Path(cache_dir)
        self.backend = backend
        self.batch_size = batch_size
        # onnxruntime intra-op threads (0: one per core). One, because on cores shared with the model server a
        # multi-thread run waits for its descheduled threads: one thread is faster per query and steadier.
        self.threads = threads
        self.fingerprint = content_fingerprint(self.path)
        self.model_id = f"layers{'-'.join(map(str, self.layers))}-{self.fingerprint}:{max_seq_length}"
        self._tokenizer: Any = None
        self._run_fn: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            config = json.loads((self.path / "config.json").read_text())
            self._dim = int(config["hidden_size"]) * len(self.layers)
        return self._dim

    def _load(self) -> None:
        with self._lock:
            if self._run_fn is not None:
                return
            if self.backend == "onnx":
                self._run_fn = self._onnx_runner()
            else:
                self._run_fn = self._torch_runner()

    def _onnx_runner(self) -> Any:
        import onnxruntime as ort

        target = self.cache_dir / f"{self.path.name}-{self.fingerprint}-l{''.join(map(str, self.layers))}.onnx"
        if not target.is_file():
            export_onnx(self.path, self.layers, target)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        session = ort.InferenceSession(str(target), opts, providers=["CPUExecutionProvider"])
        self._tokenizer = self._fast_tokenizer()

        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return np.asarray(session.run(None, {"input_ids": ids, "attention_mask": mask})[0], dtype=np.float32)

        return run

    def _fast_tokenizer(self) -> Any:
        """The model's tokenizer.json through `tokenizers` alone: importing transformers takes seconds per process."""
        tokenizer_file = self.path / "tokenizer.json"
        if not tokenizer_file.is_file():
            (auto_tokenizer,) = transformers_names("AutoTokenizer")
            return auto_tokenizer.from_pretrained(str(self.path), local_files_only=True)
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_file))
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.enable_padding()

        def encode(texts: list[str], **_: Any) -> dict[str, np.ndarray]:
            encs = tok.encode_batch(texts)
            return {
                "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            }

        return encode

    def _torch_runner(self) -> Any:
        import torch

        self._tokenizer, model = load_transformer(self.path)
        module = layer_pool_module(model.eval(), self.layers).eval()

        def run(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return module(torch.from_numpy(ids), torch.from_numpy(mask)).float().numpy()

        return run

    def _run(self, texts: list[str]) -> np.ndarray:
        self._load()
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        return self._run_fn(enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64))  # type: ignore[no-any-return]

    def embed_batch(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding low inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._run([texts[i] for i in idx])
            if progress:
                progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._run([text])[0]

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Which texts fill the whole window (their end may have been cut)."""
        self._load()
        enc = self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_seq_length)
        return [int(np.asarray(m).sum()) >= self.max_seq_length for m in enc["attention_mask"]]

    def sentence_vectors(self, features: np.ndarray) -> np.ndarray | None:
        """The model's own sentence embedding (mean-pooled last layer, L2-normalised) inside these features, when
        the last layer is among them (it is the last slice); None otherwise."""
        config = json.loads((self.path / "config.json").read_text())
        hidden, n_layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        if self.layers[-1] != n_layers:
            return None
        last = np.asarray(features, dtype=np.float32)[:, -hidden:]
        return last / np.maximum(np.linalg.norm(last, axis=1, keepdims=True), 1e-12)

    def with_model(self, path: str | Path) -> LayerPoolEncoder:
        """The same layers, window and backend over another model directory (a fine-tuned copy)."""
        return LayerPoolEncoder(
            path,
            layers=self.layers,
            max_seq_length=self.max_seq_length,
            cache_dir=self.cache_dir,
            backend=self.backend,
            batch_size=self.batch_size,
            threads=self.threads,
        )
