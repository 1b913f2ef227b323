"""The service's intent router: a greeting/thanks rule layer in front of the trained IntentClassifier.

`build_router` trains the classifier from the ontology (Bitext utterances capped per intent, our own
examples, out-of-scope examples as the rejection class) and caches it under a fingerprint of the training
data, the intent names and the encoder, so a restart with nothing changed loads it instead of training.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from assistant.intents.classifier import FORMAT_VERSION, FitReport, IntentClassifier, IntentScore
from assistant.intents.ontology import OUT_OF_SCOPE, Ontology, load_ontology
from retrieval.batching import MicroBatcher
from retrieval.encoders import EmbeddingCache, ProgressFn, TextEncoder

log = logging.getLogger(__name__)
ROUTER_FORMAT = 1
BITEXT_COLUMNS = ("utterance", "intent")

_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|heya|hiya|howdy|yo|greetings|good\s+(?:morning|afternoon|evening|day)|morning|evening"
    r"|bye|goodbye|good\s*bye|bye\s+bye|see\s+you(?:\s+later|\s+soon)?|farewell)"
    r"(?:\s+(?:there|again|all|assistant|bot|everyone|team|friend))?[\s!.?,:;)]*$",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^\s*(?:thanks?|thank\s+you|thx|ty|many\s+thanks|cheers)(?:\s+(?:so\s+much|very\s+much|a\s+lot|again|mate))?"
    r"[\s!.?,:;)]*$",
    re.IGNORECASE,
)
# "hi, where is my order" is about the order: the greeting is stripped before classifying.
_LEADING_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|good\s+(?:morning|afternoon|evening))(?:\s+there)?\s*[,!.;:-]+\s*(?=\S)", re.IGNORECASE
)


class RoutedIntent(BaseModel):
    """The routed ontology intent, its group, confidence, what decided it, and the classifier's top scores."""

    intent: str
    group: str
    confidence: float
    source: Literal["rule", "classifier", "empty"]
    scores: list[IntentScore] = Field(default_factory=list)
    ms: float | None = Field(default=None, exclude=True, description="how long routing took (the planner's trace)")

    @property
    def is_out_of_scope(self) -> bool:
        return self.intent == OUT_OF_SCOPE

    @property
    def is_shopping(self) -> bool:
        return self.group == "SHOPPING"


class RouterInfo(BaseModel):
    """How the router came to be: its cache fingerprint, whether it was loaded, and the fit report when trained."""

    fingerprint: str
    path: str
    from_cache: bool
    n_train: int
    report: FitReport | None = None


class IntentRouter:
    """Routes one shopper message to an ontology intent; cheap rules first, then the classifier."""

    def __init__(
        self,
        classifier: IntentClassifier,
        ontology: Ontology | None = None,
        *,
        rules: bool = True,
        info: RouterInfo | None = None,
    ) -> None:
        self.classifier = classifier
        self.ontology = ontology or load_ontology()
        unknown = sorted(set(classifier.classes) - set(self.ontology.names))
        if unknown:
            raise ValueError(f"classifier intents missing from the ontology: {unknown}")
        self.rules = rules
        self.info = info
        # Called with the texts the classifier encoded and their features (to reuse that forward pass).
        self.on_features: Callable[[list[str], np.ndarray], None] | None = None
        # Messages of turns routed at the same moment (from worker threads) share one classifier run. Two runs
        # may go at once (one per core here): when eight turns arrive together, the first one's run no longer
        # holds up the batch of the others.
        self._batcher: MicroBatcher[str, RoutedIntent] = MicroBatcher(self.route_many, parallel=2)

    def _rule(self, text: str) -> RoutedIntent | None:
        if not text.strip():
            return self._routed(OUT_OF_SCOPE, 1.0, "empty")
        if not self.rules:
            return None
        for rule, intent in ((_GREETING, "greeting"), (_THANKS, "small_talk")):
            # A rule speaks only for intents this ontology has; otherwise the classifier decides.
            if intent in self.ontology.names and rule.match(text):
                return self._routed(intent, 1.0, "rule")
        return None

    def _routed(
        self,
        intent: str,
        confidence: float,
        source: Literal["rule", "classifier", "empty"],
        scores: Sequence[IntentScore] = (),
    ) -> RoutedIntent:
        if intent not in self.ontology.names:
            intent = OUT_OF_SCOPE
        return RoutedIntent(
            intent=intent,
            group=self.ontology.group_of(intent),
            confidence=confidence,
            source=source,
            scores=list(scores),
        )

    def route(self, text: str) -> RoutedIntent:
        return self._batcher(text)

    def route_many(self, texts: Sequence[str]) -> list[RoutedIntent]:
        """Rules decide what they can; the rest goes to the classifier in one batch."""
        out: list[RoutedIntent | None] = [self._rule(t) for t in texts]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            stripped = [_LEADING_GREETING.sub("", texts[i]) if self.rules else texts[i] for i in todo]
            vecs = self.classifier.encoder.embed_batch(stripped)
            for i, pred in zip(todo, self.classifier.predict(stripped, vecs), strict=True):
                out[i] = self._routed(pred.intent, pred.confidence, "classifier", pred.scores)
            if self.on_features is not None:
                self.on_features(stripped, vecs)
        return [r for r in out if r is not None]


def read_bitext(path: str | Path) -> list[tuple[str, str]]:
    """(utterance, intent) rows of Bitext's train.csv; a missing file or column raises ValueError naming it."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in BITEXT_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing} (found {reader.fieldnames})")
            rows = [(r["utterance"].strip(), r["intent"].strip()) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read the Bitext CSV: {exc}") from exc
    return [(t, label) for t, label in rows if t and label]


def router_training_set(
    ontology: Ontology, bitext_rows: Sequence[tuple[str, str]], per_intent_limit: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """A seeded sample of at most `per_intent_limit` distinct Bitext utterances per intent, plus own examples."""
    wanted = {i.name for i in ontology.by_source("bitext")}
    by_intent: dict[str, list[str]] = {}
    for text, label in bitext_rows:
        if label in wanted:
            by_intent.setdefault(label, []).append(text)
    absent = sorted(wanted - by_intent.keys())
    if absent:
        raise ValueError(f"no Bitext utterances for ontology intents {absent}")
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for label in sorted(by_intent):
        pool = sorted(set(by_intent[label]))
        chosen = pool if len(pool) <= per_intent_limit else sorted(rng.sample(pool, per_intent_limit))
        texts += chosen
        labels += [label] * len(chosen)
    return ontology.training_set(texts, labels)


def router_fingerprint(
    texts: Sequence[str], labels: Sequence[str], intents: Sequence[str], model_id: str, params: dict[str, Any]
) -> str:
    blob = json.dumps(
        {
            "router": ROUTER_FORMAT,
            "classifier": FORMAT_VERSION,
            "encoder": model_id,
            "intents": sorted(intents),
            "texts": list(texts),
            "labels": list(labels),
            "params": params,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def build_router(
    encoder: TextEncoder,
    cache_dir: str | Path,
    bitext_csv: str | Path,
    per_intent_limit: int = 120,
    progress: ProgressFn | None = None,
    *,
    ontology: Ontology | None = None,
    seed: int = 0,
    rules: bool = True,
    classifier_params: dict[str, Any] | None = None,
) -> IntentRouter:
    """The service's router: loaded from `cache_dir` when the fingerprint matches, else trained and saved there."""
    if per_intent_limit < 1:
        raise ValueError(f"per_intent_limit must be at least 1, got {per_intent_limit}")
    ontology = ontology or load_ontology()
    params = dict(classifier_params or {})
    texts, labels = router_training_set(ontology, read_bitext(bitext_csv), per_intent_limit, seed)
    fingerprint = router_fingerprint(texts, labels, ontology.names, encoder.model_id, params)
    cache_dir = Path(cache_dir)
    target = cache_dir / f"router-{fingerprint}"
    if (target / "head.json").is_file():
        try:
            clf = IntentClassifier.load(target, encoder)
            info = RouterInfo(fingerprint=fingerprint, path=str(target), from_cache=True, n_train=len(texts))
            return IntentRouter(clf, ontology, rules=rules, info=info)
        except (ValueError, KeyError, OSError) as exc:
            log.warning("cached router %s is unusable (%s); retraining", target, exc)

    cache_dir.mkdir(parents=True, exist_ok=True)
    embeddings = EmbeddingCache(cache_dir / "router-embeddings.sqlite")
    try:
        clf = IntentClassifier(encoder, cache=embeddings, seed=seed, **params)
        report = clf.fit(texts, labels, oos_label=OUT_OF_SCOPE, progress=progress)
    finally:
        embeddings.close()
    clf.cache = None
    _save_atomically(clf, target)
    log.info("trained intent router on %d utterances (%s) into %s", len(texts), report, target)
    info = RouterInfo(fingerprint=fingerprint, path=str(target), from_cache=False, n_train=len(texts), report=report)
    return IntentRouter(clf, ontology, rules=rules, info=info)


def _save_atomically(clf: IntentClassifier, target: Path) -> None:
    """Save beside the target and rename, so a concurrent start never loads a half-written router."""
    tmp = Path(tempfile.mkdtemp(prefix=".router-", dir=target.parent))
    try:
        clf.save(tmp)
        if target.exists():
            shutil.rmtree(target)  # a broken earlier save; an intact one would have been loaded
        tmp.rename(target)
    except OSError as exc:
        log.warning("could not cache the intent router in %s: %s", target, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
