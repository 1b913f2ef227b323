"""Thread-safe access to transformers' names.

transformers is a lazy module: `from transformers import AutoModel` imports the model code on first
access. Two threads doing that at once (the assistant converts its language model while the indexer
converts the encoder to ONNX) make one of them fail with "cannot import name 'AutoModelForCausalLM'
from 'transformers'". Every import of transformers (and of libraries built on it) in this repository
goes through the one lock here.
"""

from __future__ import annotations

import threading
from typing import Any

IMPORT_LOCK = threading.RLock()


def transformers_names(*names: str) -> tuple[Any, ...]:
    """`from transformers import <names>`, resolved under the process-wide import lock."""
    with IMPORT_LOCK:
        import transformers

        return tuple(getattr(transformers, name) for name in names)


def sentence_transformer_class() -> Any:
    """`sentence_transformers.SentenceTransformer`, imported under the same lock (it imports transformers)."""
    with IMPORT_LOCK:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer
