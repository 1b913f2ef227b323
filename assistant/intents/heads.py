"""The fitted heads: a softmax over layer features, a TF-IDF n-gram softmax, their mixture and its tuning."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

TFIDF_PARAMS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "sublinear_tf": True},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True, "min_df": 2},
}


def stratified_split(
    labels: Sequence[str], fraction: float, seed: int, fractions: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(keep, held-out) indices; every class keeps at least one example, held out ≈ fraction of each class.

    `fractions` overrides the share for some classes.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    keep: list[int] = []
    held: list[int] = []
    for label in sorted(by_class):
        idx = rng.permutation(by_class[label]).tolist()
        n_held = min(int(round(len(idx) * (fractions or {}).get(label, fraction))), len(idx) - 1)
        held += idx[:n_held]
        keep += idx[n_held:]
    return np.array(sorted(keep), dtype=np.int64), np.array(sorted(held), dtype=np.int64)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mix(p_emb: np.ndarray, p_lex: np.ndarray | None, weight: float) -> np.ndarray:
    """Geometric mixture (a product of experts): sharper than averaging, and better at rejecting OOS."""
    if p_lex is None or weight <= 0:
        return p_emb
    return softmax((1 - weight) * np.log(p_emb + 1e-9) + weight * np.log(p_lex + 1e-9))


class Heads:
    """The fitted parameters: an embedding softmax head and an optional TF-IDF softmax head."""

    def __init__(self, classes: list[str], w: np.ndarray, b: np.ndarray, lexical: dict[str, Any] | None) -> None:
        self.classes = classes
        self.w, self.b = w, b
        self.lexical = lexical  # {"vectorizers": [...], "w": (v, k), "b": (k,)}

    def p_emb(self, vecs: np.ndarray) -> np.ndarray:
        return softmax(vecs @ self.w + self.b)

    def p_lex(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.lexical is None:
            return None
        feats = lexical_features(self.lexical["vectorizers"], texts)
        return softmax(np.asarray(feats @ self.lexical["w"], dtype=np.float32) + self.lexical["b"])


def lexical_features(vectorizers: list[Any], texts: Sequence[str]) -> Any:
    from scipy.sparse import hstack

    # float32 like the weights: a float64 matrix would make scipy upcast the whole weight matrix per call.
    return hstack([v.transform(list(texts)) for v in vectorizers]).tocsr().astype(np.float32)


def fit_heads(
    vecs: np.ndarray, texts: Sequence[str], labels: Sequence[str], c: float, lexical: bool, max_iter: int
) -> Heads:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        emb = LogisticRegression(C=c, max_iter=max_iter).fit(vecs, y)
        classes = [str(x) for x in emb.classes_]
        lex: dict[str, Any] | None = None
        if lexical:
            vectorizers = []
            for name, params in TFIDF_PARAMS.items():
                # min_df needs enough data; tiny training sets keep every n-gram.
                kw = dict(params) if len(texts) >= 1000 or name == "word" else {**params, "min_df": 1}
                vectorizers.append(TfidfVectorizer(**kw).fit(list(texts)))
            feats = lexical_features(vectorizers, texts)
            model = LogisticRegression(C=c, max_iter=max(100, max_iter // 5), tol=1e-3).fit(feats, y)
            lex = {
                "vectorizers": vectorizers,
                # Rounded to float16 here, as save() stores it, so a loaded model predicts identically.
                "w": model.coef_.T.astype(np.float16).astype(np.float32),
                "b": model.intercept_.astype(np.float32),
            }
    return Heads(classes, emb.coef_.T.astype(np.float32), emb.intercept_.astype(np.float32), lex)


def tune(
    p_emb: np.ndarray,
    p_lex: np.ndarray | None,
    gold: np.ndarray,
    classes: list[str],
    oos_label: str,
    weights: Sequence[float],
    thresholds: np.ndarray,
    recall_target: float,
) -> tuple[float, float, float, float]:
    """(lexical weight, threshold, in-scope accuracy, out-of-scope recall) chosen on held-out predictions.

    Reaching `recall_target` comes first, then in-scope accuracy (a rejected in-scope utterance is an error):
    maximising plain accuracy would let the in-scope majority (~99% of a held-out split) push the threshold to 0.
    Ties go to the smaller weight and threshold.
    """
    names = np.asarray(classes)
    in_scope = gold != oos_label
    best_key, best = (-1.0, -1.0), (0.0, 0.0, 0.0, 0.0)
    for weight in weights:
        probs = mix(p_emb, p_lex, weight)
        pred, conf = names[probs.argmax(axis=1)], probs.max(axis=1)
        for th in thresholds:
            routed = np.where(conf < th, oos_label, pred)
            acc = float((routed[in_scope] == gold[in_scope]).mean()) if in_scope.any() else 0.0
            recall = float((routed[~in_scope] == oos_label).mean()) if (~in_scope).any() else 1.0
            key = (min(recall, recall_target), acc)
            if key[0] > best_key[0] + 1e-9 or (key[0] > best_key[0] - 1e-9 and key[1] > best_key[1] + 1e-9):
                best_key, best = key, (float(weight), float(th), acc, recall)
    return best
