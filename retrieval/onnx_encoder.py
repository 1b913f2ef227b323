"""A sentence-transformers model converted once to ONNX and run with onnxruntime.

Same vectors as the torch path (to float rounding), much faster for one query on a CPU, and
somewhat higher batch throughput. Models whose pooling is not mean or CLS fall back to
sentence-transformers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.batching import MicroBatcher
from retrieval.encoders import ProgressFn, model_fingerprint
from retrieval.hf import transformers_names

QUERY_CACHE_SIZE = 256
SUPPORTED_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)


def onnx_pooling(path: Path) -> tuple[str, bool] | None:
    """(pooling mode, normalise) when the model is Transformer + mean/CLS pooling [+ Normalize]; else None."""
    try:
        modules = json.loads((path / "modules.json").read_text())
    except (OSError, ValueError):
        return None
    types = [m.get("type", "") for m in modules]
    if not types or types[0] != SUPPORTED_MODULES[0] or any(t not in SUPPORTED_MODULES for t in types):
        return None
    pooling_dir = next((m["path"] for m in modules if m["type"] == SUPPORTED_MODULES[1]), None)
    if pooling_dir is None:
        return None
    cfg = json.loads((path / pooling_dir / "config.json").read_text())
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        mode = "mean"
    elif modes == ["pooling_mode_cls_token"]:
        mode = "cls"
    else:
        return None
    return mode, SUPPORTED_MODULES[2] in types


def export_onnx(model_dir: Path, target: Path, pooling: str, normalise: bool) -> None:
    """Trace the transformer with its pooling into one ONNX graph (written atomically)."""
    import torch

    AutoModel, AutoTokenizer = transformers_names("AutoModel", "AutoTokenizer")  # noqa: N806
    print(f"converting {model_dir} to ONNX (once) -> {target}", file=sys.stderr)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                emb = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(emb, dim=-1) if normalise else emb

    trace_to_onnx(Pooled(model), tokenizer, target, "embedding", started)


def trace_to_onnx(module: Any, tokenizer: Any, target: Path, output: str, started: float) -> None:
    """Trace `module(input_ids, attention_mask)` into `target` (written atomically) with dynamic batch/length."""
    import torch

    sample = tokenizer(["an example query", "a second, longer example sentence"], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, output: {0: "batch"}}
    with torch.inference_mode():
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"]),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=[output],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)
    print(f"converted in {time.perf_counter() - started:.1f}s", file=sys.stderr)


SMALL_BATCH = 8  # up to this many texts run like queries (one thread): latency, not throughput


class OnnxEncoder:
    """Runs a converted sentence-transformers model with onnxruntime; converts on first use."""

    def __init__(
        self,
        path: Path,
        cache_dir: Path,
        max_seq_length: int = 128,
        batch_size: int = 32,
        threads: int = 0,
        query_threads: int = 1,
    ) -> None:
        pooling = onnx_pooling(path)
        if pooling is None:
            raise ValueError(f"{path}: only Transformer + mean/CLS pooling models convert to ONNX")
        self.path = path
        self._pooling = pooling
        self.fingerprint = model_fingerprint(path)
        self.onnx_path = cache_dir / f"{path.name}-{self.fingerprint}.onnx"
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        # onnxruntime intra-op threads (0: one per core) for batches (indexing), and for queries. Queries take
        # one: on cores shared with a busy model server a two-thread run waits for its descheduled half, while a
        # one-thread run hardly slows.
        self.threads = threads
        self.query_threads = query_threads
        self.model_id = f"st-{self.fingerprint}:{max_seq_length}"
        self._sessions: dict[int, Any] = {}  # by thread count
        self._tokenizer: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        # Queries of concurrent searches are embedded together (one ONNX run for all of them).
        self._query_batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            lambda texts: list(self._run(texts, self.query_threads))
        )

    def _load(self, threads: int) -> Any:
        """The onnxruntime session with this many intra-op threads (converting the model on first use)."""
        with self._lock:
            session = self._sessions.get(threads)
            if session is not None:
                return session
            import onnxruntime as ort

            if not self.onnx_path.is_file():
                export_onnx(self.path, self.onnx_path, *self._pooling)
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads:
                opts.intra_op_num_threads = threads
            if self._tokenizer is None:
                (auto_tokenizer,) = transformers_names("AutoTokenizer")
                self._tokenizer = auto_tokenizer.from_pretrained(str(self.path), local_files_only=True)
            session = self._sessions[threads] = ort.InferenceSession(
                str(self.onnx_path), opts, providers=["CPUExecutionProvider"]
            )
            return session

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._run(["dimension probe"], self.query_threads).shape[1])
        return self._dim

    def _run(self, texts: list[str], threads: int) -> np.ndarray:
        session = self._load(threads)
        enc = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        feeds = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        return np.asarray(session.run(None, feeds)[0], dtype=np.float32)

    def embed_batch(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: np.ndarray | None = None
        threads = self.query_threads if len(texts) <= SMALL_BATCH else self.threads
        # Sorting by length keeps padding low inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            vecs = self._run([texts[i] for i in idx], threads)
            if out is None:
                out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
            out[idx] = vecs
            if progress:
                progress(len(idx))
        assert out is not None
        return out

    def embed_query(self, text: str) -> np.ndarray:
        # A chat turn embeds the same message for routing, search and the relevance check: remember a few.
        with self._lock:
            hit = self._queries.get(text)
            if hit is not None:
                self._queries.move_to_end(text)
                return hit
        vec = self._query_batcher(text)
        self.remember_query(text, vec)
        return vec

    def remember_query(self, text: str, vec: np.ndarray) -> None:
        """Keep a query's vector computed elsewhere (the same model's embedding from another forward pass)."""
        vec = np.asarray(vec, dtype=np.float32)
        vec.setflags(write=False)
        with self._lock:
            self._queries[text] = vec
            self._queries.move_to_end(text)
            if len(self._queries) > QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
