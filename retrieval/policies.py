"""Store policies (ABCD guidelines) split into passages with stable ids, indexed with BM25 (+ dense vectors)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from pydantic import BaseModel, Field

from retrieval.encoders import TextEncoder
from retrieval.lexical import Tokenizer

INDEX_VERSION = 2
SOURCE_FILES = ("guidelines.json", "kb.json", "ontology.json")
# Guidelines are agent procedures and shoppers paraphrase them, so meaning outweighs shared words: on a dozen
# hand-written questions, 0.2 / 0.8 put the right passage first most often (BM25 alone misses "how many days ...").
LEXICAL_WEIGHT = 0.2
DENSE_WEIGHT = 0.8


class Passage(BaseModel):
    """One retrievable piece of policy; `id` is stable while the source text is ("abcd:<section>:<n>")."""

    id: str
    section: str
    title: str
    text: str
    applies_to: list[str] = Field(default_factory=list)

    def index_text(self) -> str:
        return f"{self.title}\n{self.text}"

    def chunks(self) -> list[str]:
        """Texts embedded for this passage: each line under the title (the encoder reads ~64 tokens only)."""
        lines = [line for line in self.text.split("\n") if line.strip()] or [""]
        return [f"{self.title}\n{line}" for line in lines]


class PolicyHit(BaseModel):
    passage: Passage
    score: float
    lexical: float
    dense: float | None = None


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _clean(text: str) -> str:
    # The guideline document marks quoted replies with "> "; they read better as plain sentences.
    text = text.replace("<or>", "or")
    text = re.sub(r"(?<!\S)>\s+", "", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def load_passages(source: str | Path) -> list[Passage]:
    """Passages from ABCD's guidelines.json, with each subflow's action steps from kb.json / ontology.json.

    Every subflow gives an overview passage (n=0: what the flow is for, instructions, steps) and one
    passage per action (n=1..). Actions repeated word for word across subflows are kept once, with
    the other subflows listed in `applies_to`.
    """
    source = Path(source)
    guidelines = json.loads((source / "guidelines.json").read_text(encoding="utf-8"))
    kb = _read_optional(source / "kb.json")
    ontology = _read_optional(source / "ontology.json")
    onto_subflows: dict[str, list[str]] = (ontology.get("intents") or {}).get("subflows") or {}
    passages: list[Passage] = []
    seen: dict[str, Passage] = {}
    for flow_name, flow in guidelines.items():
        flow_key = _key(flow_name)
        subflows: dict[str, Any] = flow.get("subflows") or {}
        # The ontology lists each flow's subflows in the guidelines' order, under kb.json's intent names.
        intent_names = onto_subflows.get(flow_key, [])
        if len(intent_names) != len(subflows):
            intent_names = [_key(s) for s in subflows]
        for (sub_name, sub), intent in zip(subflows.items(), intent_names, strict=True):
            section = f"{flow_key}.{intent}"
            title = f"{flow_name} › {sub_name}"
            overview = [f"{flow_name}: {flow.get('description', '')}."]
            overview += [_clean(s) for s in sub.get("instructions", []) if s.strip()]
            steps = kb.get(intent)
            if steps:
                overview.append("Steps: " + ", ".join(s.replace("-", " ") for s in steps) + ".")
            passages.append(Passage(id=f"abcd:{section}:0", section=section, title=title, text="\n".join(overview)))
            for n, action in enumerate(sub.get("actions", []), start=1):
                lines = [_clean(action.get("text", ""))] + [_clean(s) for s in action.get("subtext", []) if s.strip()]
                text = "\n".join(s for s in lines if s)
                button = action.get("button") or ""
                a_title = f"{title} › {button}" if button and button != "N/A" else title
                norm = " ".join(text.lower().split())
                if norm in seen:
                    seen[norm].applies_to.append(title)
                    continue
                p = Passage(id=f"abcd:{section}:{n}", section=section, title=a_title, text=text, applies_to=[title])
                seen[norm] = p
                passages.append(p)
    return passages


def _read_optional(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def source_fingerprint(source: str | Path) -> str:
    h = hashlib.sha256(f"v{INDEX_VERSION}".encode())
    for name in SOURCE_FILES:
        f = Path(source) / name
        h.update(name.encode())
        h.update(f.read_bytes() if f.is_file() else b"-")
    return h.hexdigest()[:16]


class PolicyIndex:
    """BM25 over policy passages, plus cosine to passage vectors when a text encoder is given."""

    def __init__(
        self,
        passages: list[Passage],
        bm25: bm25s.BM25,
        encoder: TextEncoder | None = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        self.passages = passages
        self.by_id = {p.id: p for p in passages}
        self._bm25 = bm25
        self._tokenize = Tokenizer()
        self.encoder = encoder
        self.vectors = vectors  # one row per chunk, passages in order
        sizes = [len(p.chunks()) for p in passages[:-1]]
        self._chunk_starts: np.ndarray = np.cumsum([0, *sizes], dtype=np.intp)

    @classmethod
    def build(cls, passages: list[Passage], encoder: TextEncoder | None = None) -> PolicyIndex:
        tokenizer = Tokenizer()
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        bm25.index([tokenizer(p.index_text()) or ["__empty__"] for p in passages], show_progress=False)
        vectors = _embed_chunks(encoder, passages) if encoder is not None else None
        return cls(passages, bm25, encoder, vectors)

    @classmethod
    def load_or_build(
        cls, source: str | Path, cache_dir: str | Path, encoder: TextEncoder | None = None
    ) -> PolicyIndex:
        """The index of `source`, from `cache_dir` when it was built from the same files; else built and saved."""
        source, cache_dir = Path(source), Path(cache_dir)
        if not (source / "guidelines.json").is_file():
            raise FileNotFoundError(f"no guidelines.json in {source} (the ABCD policy folder)")
        name = f"{source.name}-{source_fingerprint(source)}"
        target = cache_dir / name
        if not (target / "passages.json").is_file():
            cls._build_dir(source, cache_dir, target)
        for stale in cache_dir.glob(f"{source.name}-*"):
            if stale.name != name and stale.is_dir() and ".tmp" not in stale.name:
                shutil.rmtree(stale, ignore_errors=True)
        passages = [Passage.model_validate(p) for p in json.loads((target / "passages.json").read_text())]
        bm25 = bm25s.BM25.load(str(target / "bm25"), show_progress=False)
        vectors = None
        if encoder is not None:
            vec_file = target / f"vectors-{hashlib.sha256(encoder.model_id.encode()).hexdigest()[:12]}.npy"
            if vec_file.is_file():
                vectors = np.load(vec_file)
            if vectors is None or vectors.shape[0] != sum(len(p.chunks()) for p in passages):
                vectors = _embed_chunks(encoder, passages)
                tmp = vec_file.with_name(f"{vec_file.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as fh:
                    np.save(fh, vectors)
                tmp.replace(vec_file)
        return cls(passages, bm25, encoder, vectors)

    @classmethod
    def _build_dir(cls, source: Path, cache_dir: Path, target: Path) -> None:
        passages = load_passages(source)
        index = cls.build(passages)
        tmp = cache_dir / f"{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        index._bm25.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "passages.json").write_text(json.dumps([p.model_dump() for p in passages], ensure_ascii=False))
        try:
            tmp.rename(target)
        except OSError:  # another process finished the same build first
            shutil.rmtree(tmp, ignore_errors=True)

    def search(self, question: str, k: int = 3) -> list[PolicyHit]:
        """The `k` best passages, best first: lexical (scaled to [0, 1]) and dense cosine, fused."""
        n = len(self.passages)
        if n == 0 or not question.strip():
            return []
        vocab = self._bm25.vocab_dict
        tokens = [t for t in self._tokenize(question) if t in vocab]
        lex = np.asarray(self._bm25.get_scores(tokens), dtype=np.float64) if tokens else np.zeros(n)
        top = float(lex.max()) if lex.size else 0.0
        if top > 0:
            lex = lex / top
        dense: np.ndarray | None = None
        if self.encoder is not None and self.vectors is not None:
            sims = self.vectors @ self.encoder.embed_query(question).astype(np.float32)
            # A passage is as close as its closest line.
            dense = np.maximum.reduceat(sims, self._chunk_starts).astype(np.float64)
            score = LEXICAL_WEIGHT * lex + DENSE_WEIGHT * dense
        else:
            score = lex
        order = np.argsort(-score, kind="stable")[:k]
        return [
            PolicyHit(
                passage=self.passages[i],
                score=float(score[i]),
                lexical=float(lex[i]),
                dense=float(dense[i]) if dense is not None else None,
            )
            for i in order
            if score[i] > 0
        ]


def _embed_chunks(encoder: TextEncoder, passages: list[Passage]) -> np.ndarray:
    return np.asarray(encoder.embed_batch([c for p in passages for c in p.chunks()]), dtype=np.float32)
