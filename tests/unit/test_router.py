"""IntentRouter and build_router with the hashing fake encoder, a six-intent ontology and a toy Bitext CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from assistant.intents.classifier import IntentClassifier
from assistant.intents.ontology import Ontology, load_ontology
from assistant.intents.router import (
    IntentRouter,
    build_router,
    read_bitext,
    router_training_set,
)
from retrieval.encoders import HashingEncoder

INTENTS = ["track_order", "get_refund", "search_products", "greeting", "small_talk", "out_of_scope"]
FAST = {"lexical": False, "max_iter": 200}  # the TF-IDF head costs seconds to fit; one test keeps it


@pytest.fixture(scope="module")
def ontology() -> Ontology:
    full = load_ontology()
    return Ontology(version=1, intents=[full.get(n) for n in INTENTS])


def write_bitext(path: Path, per_intent: int = 12) -> Path:
    rows = []
    for i in range(per_intent):
        rows += [
            (f"where is my order number {i}", "track_order"),
            (f"track order {i} status please", "track_order"),
            (f"i want a refund for purchase {i}", "get_refund"),
            (f"give me my money back {i}", "get_refund"),
        ]
    rows.append(("how much does cancelling cost", "check_cancellation_fee"))  # not in this ontology: skipped
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["utterance", "intent", "category", "flags"])
        writer.writerows((text, label, "X", "B") for text, label in rows)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bitext(tmp_path_factory.mktemp("bitext") / "train.csv")


@pytest.fixture(scope="module")
def router(data: Path, ontology: Ontology, tmp_path_factory: pytest.TempPathFactory) -> IntentRouter:
    cache = tmp_path_factory.mktemp("router-cache")
    return build_router(HashingEncoder(dim=256), cache, data, 10, ontology=ontology, classifier_params=FAST)


def test_routes_to_ontology_intents_with_groups(router: IntentRouter) -> None:
    cases = {
        "where is my order": ("track_order", "ORDER"),
        "i want a refund please": ("get_refund", "REFUNDS"),
        "show me red running shoes": ("search_products", "SHOPPING"),
        "book me a flight to Rome": ("out_of_scope", "OUT_OF_SCOPE"),
    }
    routed = router.route_many(list(cases))
    assert [(r.intent, r.group) for r in routed] == list(cases.values())
    assert all(r.source == "classifier" and 0 < r.confidence <= 1 and r.scores for r in routed)
    assert routed[2].is_shopping and routed[3].is_out_of_scope


def test_rules_answer_greetings_and_thanks_without_the_classifier(router: IntentRouter) -> None:
    encoder = router.classifier.encoder
    assert isinstance(encoder, HashingEncoder)
    before = encoder.texts_embedded
    routed = router.route_many(["Hi there!", "good morning", "bye", "thanks a lot!", "   "])
    assert [(r.intent, r.source) for r in routed] == [
        ("greeting", "rule"),
        ("greeting", "rule"),
        ("greeting", "rule"),
        ("small_talk", "rule"),
        ("out_of_scope", "empty"),
    ]
    assert encoder.texts_embedded == before
    # A greeting in front of a request does not hide the request.
    hello = router.route("Hello, where is my order?")
    assert (hello.intent, hello.source) == ("track_order", "classifier")
    assert router.route("hi shoes").source == "classifier"


def test_rules_stay_silent_for_intents_the_ontology_lacks(ontology: Ontology) -> None:
    narrow = Ontology(version=1, intents=[i for i in ontology.intents if i.name != "small_talk"])
    clf = IntentClassifier(HashingEncoder(dim=64), lexical=False)
    clf.fit(["hello", "hi there", "where is my order", "track my order"], ["greeting"] * 2 + ["track_order"] * 2)
    router = IntentRouter(clf, narrow)
    assert router.route("thanks!").source == "classifier"
    assert router.route("hello!").source == "rule"


def test_second_start_loads_the_cached_router(data: Path, ontology: Ontology, tmp_path: Path) -> None:
    first = build_router(HashingEncoder(dim=256), tmp_path, data, 10, ontology=ontology, classifier_params=FAST)
    assert first.info is not None and not first.info.from_cache and first.info.report is not None
    encoder = HashingEncoder(dim=256)
    second = build_router(encoder, tmp_path, data, 10, ontology=ontology, classifier_params=FAST)
    assert second.info is not None and second.info.from_cache and second.info.path == first.info.path
    assert encoder.texts_embedded == 0  # nothing retrained
    texts = ["where is my order", "refund", "red shoes", "what's the weather"]
    assert [r.model_dump() for r in second.route_many(texts)] == [r.model_dump() for r in first.route_many(texts)]


def test_fingerprint_follows_data_limit_and_encoder(data: Path, ontology: Ontology, tmp_path: Path) -> None:
    def fingerprint(encoder: HashingEncoder, limit: int, csv_path: Path = data) -> str:
        built = build_router(encoder, tmp_path, csv_path, limit, ontology=ontology, classifier_params=FAST)
        assert built.info is not None
        return built.info.fingerprint

    base = fingerprint(HashingEncoder(dim=256), 10)
    assert fingerprint(HashingEncoder(dim=256), 10) == base
    assert fingerprint(HashingEncoder(dim=128), 10) != base
    assert fingerprint(HashingEncoder(dim=256), 5) != base
    assert fingerprint(HashingEncoder(dim=256), 10, write_bitext(tmp_path / "more.csv", per_intent=13)) != base
    assert len(list(tmp_path.glob("router-*/head.json"))) == 4


def test_a_broken_cache_is_retrained(data: Path, ontology: Ontology, tmp_path: Path) -> None:
    first = build_router(HashingEncoder(dim=256), tmp_path, data, 10, ontology=ontology, classifier_params=FAST)
    assert first.info is not None
    (Path(first.info.path) / "head.npz").write_bytes(b"not numpy")
    again = build_router(HashingEncoder(dim=256), tmp_path, data, 10, ontology=ontology, classifier_params=FAST)
    assert again.info is not None and not again.info.from_cache
    assert again.route("where is my order").intent == "track_order"
    assert not list(tmp_path.glob(".router-*"))  # no temporary directories left behind


def test_classifier_with_lexical_head_trains_and_reloads(data: Path, ontology: Ontology, tmp_path: Path) -> None:
    params = {"lexical_weights": (0.3,), "max_iter": 200}
    built = build_router(HashingEncoder(dim=256), tmp_path, data, 6, ontology=ontology, classifier_params=params)
    loaded = build_router(HashingEncoder(dim=256), tmp_path, data, 6, ontology=ontology, classifier_params=params)
    assert loaded.info is not None and loaded.info.from_cache
    assert loaded.route("give me my money back").intent == built.route("give me my money back").intent == "get_refund"


def test_training_set_caps_each_bitext_intent(data: Path, ontology: Ontology) -> None:
    rows = read_bitext(data)
    texts, labels = router_training_set(ontology, rows, per_intent_limit=5, seed=1)
    assert labels.count("track_order") == labels.count("get_refund") == 5
    assert labels.count("search_products") == len(ontology.get("search_products").examples)
    assert "out_of_scope" in labels and "check_cancellation_fee" not in labels
    assert router_training_set(ontology, rows, 5, seed=1) == (texts, labels)  # deterministic
    assert router_training_set(ontology, rows, 5, seed=2) != (texts, labels)


def test_bad_inputs_raise_clear_errors(ontology: Ontology, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no Bitext utterances for ontology intents \\['get_refund'\\]"):
        router_training_set(ontology, [("where is my order", "track_order")], 5)
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,greeting\n")
    with pytest.raises(ValueError, match="missing column"):
        read_bitext(bad)
    with pytest.raises(ValueError, match="cannot read"):
        read_bitext(tmp_path / "absent.csv")


def test_router_rejects_a_classifier_with_unknown_intents(ontology: Ontology) -> None:
    clf = IntentClassifier(HashingEncoder(dim=32), lexical=False)
    clf.fit(["a b", "c d", "e f", "g h"], ["track_order", "track_order", "mystery", "mystery"])
    with pytest.raises(ValueError, match="mystery"):
        IntentRouter(clf, ontology)
