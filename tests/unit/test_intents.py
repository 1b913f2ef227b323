"""IntentClassifier and the ontology, with the hashing fake encoder (no model, no network)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from assistant.intents.classifier import OUT_OF_SCOPE, IntentClassifier, stratified_split
from assistant.intents.heads import tune
from assistant.intents.ontology import BITEXT_GROUPS, SHOPPING_INTENTS, load_ontology
from retrieval.encoders import EmbeddingCache, HashingEncoder
from tests.conftest import SHARED_DATA

TOY = {
    "track_order": ["where is my order", "track my order please", "has my order shipped", "order status"],
    "get_refund": ["i want my money back", "refund my purchase", "give me a refund", "money back please"],
    "search_products": ["show me red shoes", "find running shoes", "looking for blue shoes", "any shoes in red"],
    "greeting": ["hello", "hi there", "hey hello", "good morning hello"],
}


def toy_data(repeat: int = 3) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for intent, examples in TOY.items():
        for i in range(repeat):
            for ex in examples:
                texts.append(ex if i == 0 else f"{ex} {'now' * i}")
                labels.append(intent)
    return texts, labels


def fitted(**kw: object) -> IntentClassifier:
    clf = IntentClassifier(HashingEncoder(dim=256), **kw)  # type: ignore[arg-type]
    clf.fit(*toy_data())
    return clf


@pytest.mark.parametrize("lexical", [True, False])
def test_fit_predict_routes_toy_utterances(lexical: bool) -> None:
    clf = fitted(lexical=lexical)
    preds = clf.predict(["where is my order", "i want a refund", "red shoes please", "hello"])
    assert [p.intent for p in preds] == ["track_order", "get_refund", "search_products", "greeting"]
    for p in preds:
        assert len(p.scores) == 3
        assert p.scores[0].intent == p.intent and p.scores[0].score == pytest.approx(p.confidence)
        assert p.scores[0].score >= p.scores[1].score >= p.scores[2].score


def test_save_load_round_trip_predicts_identically(tmp_path: Path) -> None:
    clf = fitted(threshold=0.3)
    texts = ["where is my order", "refund please", "shoes", "hi", "completely unrelated words"]
    before = clf.predict(texts)
    clf.save(tmp_path / "head")
    loaded = IntentClassifier.load(tmp_path / "head", HashingEncoder(dim=256))
    assert loaded.classes == clf.classes and loaded.threshold == 0.3
    assert [p.model_dump() for p in loaded.predict(texts)] == [p.model_dump() for p in before]


def test_load_rejects_a_different_encoder(tmp_path: Path) -> None:
    fitted().save(tmp_path / "head")
    with pytest.raises(ValueError, match="trained with encoder hashing-256"):
        IntentClassifier.load(tmp_path / "head", HashingEncoder(dim=64))


def test_threshold_sends_unrelated_text_to_out_of_scope() -> None:
    clf = fitted(threshold=0.6)
    gibberish = clf.predict(["qzxv blorp fnarg", "the mitochondria is the powerhouse of the cell"])
    assert [p.intent for p in gibberish] == [OUT_OF_SCOPE, OUT_OF_SCOPE]
    assert all(p.confidence < 0.6 for p in gibberish)
    # The same threshold keeps clear in-scope utterances.
    assert clf.predict_one("where is my order").intent == "track_order"


def test_trained_oos_class_is_predicted_and_threshold_is_tuned() -> None:
    texts, labels = toy_data()
    oos = ["what is the weather", "play music", "tell me the weather", "play some jazz music", "weather tomorrow"]
    texts += oos * 3
    labels += ["oos"] * len(oos) * 3
    clf = IntentClassifier(HashingEncoder(dim=256), validation_fraction=0.25)
    report = clf.fit(texts, labels, oos_label="oos")
    assert report.validation_accuracy is not None and report.n_validation > 0
    assert 0.0 <= report.threshold < 1.0 and clf.threshold == report.threshold
    assert clf.oos_label == "oos"
    assert clf.predict_one("what is the weather like").intent == "oos"
    assert clf.predict_one("track my order").intent == "track_order"


@pytest.mark.parametrize(
    ("texts", "labels", "oos", "match"),
    [
        (["a", "b"], ["x"], None, "2 texts but 1 labels"),
        (["a", "b"], ["x", ""], None, "non-empty strings"),
        (["a", "b"], ["x", None], None, "non-empty strings"),
        (["a", "b"], ["x", "x"], None, "at least two intents"),
        (["a", "b"], ["x", "y"], "oos", "does not occur"),
    ],
)
def test_bad_training_input_errors(texts: list[str], labels: list, oos: str | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        IntentClassifier(HashingEncoder()).fit(texts, labels, oos_label=oos)


def test_predict_before_fit_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        IntentClassifier(HashingEncoder()).predict(["hi"])


def test_embedding_cache_avoids_reencoding(tmp_path: Path) -> None:
    encoder = HashingEncoder(dim=256)
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    texts, labels = toy_data()
    IntentClassifier(encoder, cache=cache, lexical=False).fit(texts, labels)
    embedded = encoder.texts_embedded
    IntentClassifier(encoder, cache=cache, lexical=False).fit(texts, labels)
    assert encoder.texts_embedded == embedded
    cache.close()


def test_stratified_split_keeps_every_class_in_training() -> None:
    labels = ["a"] * 10 + ["b"] * 5 + ["c"]
    keep, held = stratified_split(labels, 0.2, seed=0)
    assert sorted([*keep, *held]) == list(range(len(labels)))
    assert {labels[i] for i in keep} == {"a", "b", "c"}
    assert sorted(labels[i] for i in held) == ["a", "a", "b"]


def test_ontology_has_bitext_shopping_and_conversation_intents() -> None:
    onto = load_ontology()
    bitext = onto.by_source("bitext")
    assert len(bitext) == 27
    assert {i.group for i in bitext} == set(BITEXT_GROUPS)
    for name in (*SHOPPING_INTENTS, "greeting", "small_talk", "out_of_scope"):
        intent = onto.get(name)
        assert intent.source == "own" and 15 <= len(intent.examples) <= 25
    assert onto.group_of("track_order") == "ORDER" and onto.group_of("cart_add") == "SHOPPING"
    texts, labels = onto.own_examples()
    assert len(texts) == len(labels) and set(labels) == {*SHOPPING_INTENTS, "greeting", "small_talk", "out_of_scope"}


def test_ontology_matches_bitext_names_and_categories() -> None:
    path = SHARED_DATA / "intents" / "bitext" / "train.csv"
    if not path.is_file():
        pytest.skip(f"Bitext data not found at {path}")
    with open(path, encoding="utf-8", newline="") as fh:
        pairs = {(r["intent"], r["category"]) for r in csv.DictReader(fh)}
    onto = load_ontology()
    assert pairs == {(i.name, i.group) for i in onto.by_source("bitext")}


def test_ontology_training_set_rejects_unknown_bitext_labels() -> None:
    with pytest.raises(ValueError, match="not in the ontology"):
        load_ontology().training_set(["hi"], ["made_up_intent"])


def test_bad_ontology_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "o.yaml"
    bad.write_text("version: 1\nintents:\n  - {name: greeting, group: CONVERSATION, source: own, description: hi}\n")
    with pytest.raises(ValueError, match="need at least 15"):
        load_ontology(bad)


def test_threshold_tuning_reaches_the_oos_recall_target_before_accuracy() -> None:
    # Held-out scores: 18 confident in-scope hits, 2 in-scope at 0.5, 4 out-of-scope utterances at 0.4 confidence
    # that the argmax calls "a". Plain accuracy peaks at threshold 0; the target makes it reject them.
    classes = ["a", "b", "oos"]
    rows = [[0.9, 0.05, 0.05]] * 18 + [[0.5, 0.3, 0.2]] * 2 + [[0.4, 0.3, 0.3]] * 4
    gold = np.array(["a"] * 20 + ["oos"] * 4)
    thresholds = np.round(np.arange(0.0, 0.91, 0.025), 3)
    weight, threshold, acc, recall = tune(np.array(rows), None, gold, classes, "oos", (0.0,), thresholds, 0.7)
    assert 0.4 < threshold <= 0.5 and recall == 1.0 and acc == 1.0
    # Reaching the target would cost more in-scope hits than it must: the smallest sufficient threshold wins.
    rows = [[0.9, 0.05, 0.05]] * 16 + [[0.35, 0.33, 0.32]] * 4 + [[0.4, 0.3, 0.3]] * 3 + [[0.3, 0.3, 0.4]]
    _, threshold, acc, recall = tune(np.array(rows), None, gold, classes, "oos", (0.0,), thresholds, 0.25)
    assert threshold == 0.0 and recall == 0.25 and acc == 1.0
    _, threshold, acc, recall = tune(np.array(rows), None, gold, classes, "oos", (0.0,), thresholds, 1.0)
    assert 0.4 < threshold <= 0.9 and recall == 1.0 and acc == 0.8


def test_stratified_split_per_class_share() -> None:
    labels = ["a"] * 100 + ["oos"] * 20
    _, held = stratified_split(labels, 0.1, seed=0, fractions={"oos": 0.3})
    assert sorted(labels[i] for i in held) == ["a"] * 10 + ["oos"] * 6


def test_finetuning_needs_a_transformer_encoder() -> None:
    with pytest.raises(ValueError, match="LayerPoolEncoder"):
        IntentClassifier(HashingEncoder(), finetune_epochs=1)
