"""The policy index and policy_answer: the passage that answers, its answering sentences, cited; nothing when no
policy is close enough; sentence vectors reused from the embedding cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from assistant.settings import SHIPPED_POLICIES
from assistant.tools import policies
from assistant.tools.base import Toolbox, ToolContext, ToolDeps
from retrieval.encoders import EmbeddingCache, HashingEncoder
from retrieval.policies import PolicyHit, PolicyIndex, SentenceScore
from retrieval.policy_docs import Passage, load_passages

CTX = ToolContext(shopper_id="s1", session_id="sess", turn_id="t1")


def passage(pid: str, text: str, intents: list[str] | None = None) -> Passage:
    policy, title = pid.split("#")
    return Passage(
        id=pid,
        policy=policy,
        policy_title=policy.title(),
        title=title.replace("-", " ").capitalize(),
        text=text,
        intents=intents or [],
        updated="2026-12-01",
    )


class TopicEncoder:
    """A fake encoder whose vectors point along the topics a text names: cosine says which topic matches."""

    model_id = "topic-fake"
    dim = 5
    TOPICS = ("deliver", "return", "pay", "cancel")

    def __init__(self) -> None:
        self.batches = 0

    def _vec(self, text: str) -> np.ndarray:
        v = [1.0 if t in text.lower() else 0.0 for t in self.TOPICS]
        v = np.array([*v, 0.0 if any(v) else 1.0], dtype=np.float32) + 0.01  # the last: none of the topics
        return v / np.linalg.norm(v)

    def embed_batch(self, texts, progress=None):  # type: ignore[no-untyped-def]
        self.batches += 1
        return np.stack([self._vec(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


PASSAGES = [
    passage(
        "shipping#delivery-times",
        "Standard delivery takes 3 to 5 business days. We don't deliver on Sundays.",
        ["delivery_period"],
    ),
    passage("returns#returns-window", "You can return most items within 30 days. Worn shoes can't be returned."),
    passage("payments#methods", "You can pay by card or PayPal."),
]


def test_the_best_passage_and_its_answering_sentence() -> None:
    index = PolicyIndex.build(PASSAGES, TopicEncoder())
    hits = index.search("how long does delivery take?", k=3)
    assert hits[0].passage.id == "shipping#delivery-times" and hits[0].relevant
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].quote()[0] == "Standard delivery takes 3 to 5 business days."
    assert not hits[-1].relevant  # another topic: not close enough to answer


def test_lexical_words_pick_the_sentence_within_a_passage() -> None:
    index = PolicyIndex.build(PASSAGES, TopicEncoder())
    hit = index.search("can I return worn shoes?")[0]
    assert hit.passage.id == "returns#returns-window"
    assert hit.quote(max_sentences=1) == ["Worn shoes can't be returned."]


def test_the_question_intent_favours_the_policies_that_list_it() -> None:
    both = [
        passage("returns#window", "Returns within 30 days."),
        passage("shipping#times", "Delivery takes 5 days.", ["delivery_period"]),
    ]
    index = PolicyIndex.build(both)  # BM25 only: both passages hold "days" once, and as many words
    assert index.search("how many days?")[0].passage.id == "returns#window"  # a tie: the first
    assert index.search("how many days?", intent="delivery_period")[0].passage.id == "shipping#times"


def test_without_an_encoder_a_passage_sharing_no_word_is_not_a_hit() -> None:
    index = PolicyIndex.build(PASSAGES)
    assert index.search("the weather on mars") == []
    assert not any(h.relevant for h in index.search("what can you do?"))  # question words alone answer nothing
    hit = index.search("do you take paypal")[0]
    assert hit.passage.id == "payments#methods" and hit.relevant and hit.dense is None


def test_a_quote_is_the_closest_sentence_and_close_seconds_in_passage_order() -> None:
    p = passage("x#y", "First. Second. Third.")

    def hit(*scores: float) -> PolicyHit:
        sentences = [SentenceScore(text=s, score=v) for s, v in zip(p.sentences(), scores, strict=True)]
        return PolicyHit(passage=p, score=1.0, lexical=1.0, relevant=True, sentences=sentences)

    assert hit(0.2, 0.9, 0.85).quote() == ["Second.", "Third."]
    assert hit(0.2, 0.9, 0.5).quote() == ["Second."]
    assert hit(0.88, 0.9, 0.1).quote() == ["First.", "Second."]
    assert hit(0.9, 0.9, 0.9).quote(max_sentences=1) == ["First."]
    assert hit(0.9, 0.89, 0.1).quote(max_words=1) == ["First."]


def test_sentence_vectors_come_from_the_embedding_cache(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    encoder = TopicEncoder()
    first = PolicyIndex.build(PASSAGES, encoder, cache)
    assert encoder.batches == 1 and first.vectors is not None and first.vectors.shape == (5, 5)
    again = PolicyIndex.build(PASSAGES, encoder, cache)
    assert encoder.batches == 1  # nothing encoded twice
    assert np.allclose(again.vectors, first.vectors)  # type: ignore[arg-type]
    cache.close()


def test_duplicate_or_missing_passages_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        PolicyIndex.build([PASSAGES[0], PASSAGES[0]])
    with pytest.raises(ValueError, match="no policy passages"):
        PolicyIndex.build([])


def test_policy_answer_quotes_the_best_passage_and_cites_every_passage_returned() -> None:
    toolbox = Toolbox(policies.tools(ToolDeps(policies=PolicyIndex.build(PASSAGES, TopicEncoder()))))
    res = asyncio.run(toolbox.call("policy_answer", {"question": "how long does delivery take?"}, CTX))
    assert res.ok
    answer = res.data["answer"]
    assert answer["passage"] == "shipping#delivery-times"
    assert answer["sentences"] == ["Standard delivery takes 3 to 5 business days."]
    assert answer["rest"] == ["We don't deliver on Sundays."]
    assert res.citations == [f"policy:{p['id']}" for p in res.data["passages"]]
    assert res.data["passages"][0]["updated"] == "2026-12-01"
    bad = asyncio.run(toolbox.call("policy_answer", {"question": ""}, CTX))
    assert not bad.ok and "question" in (bad.error or "")


def test_policy_answer_has_no_answer_when_no_policy_is_close_enough() -> None:
    index = PolicyIndex.build(PASSAGES, TopicEncoder())
    toolbox = Toolbox(policies.tools(ToolDeps(policies=index)))
    res = asyncio.run(toolbox.call("policy_answer", {"question": "do you offer gift wrapping?"}, CTX))
    assert res.ok and res.data["answer"] is None


def test_shipped_policies_answer_with_bm25_alone() -> None:
    """Without an encoder (tests, a store without the model), the shipped policies still find the right section."""
    index = PolicyIndex.build(load_passages(SHIPPED_POLICIES), HashingEncoder(dim=64), min_dense=-1.0)
    assert index.vectors is not None
    plain = PolicyIndex.build(load_passages(SHIPPED_POLICIES))
    for question, expected in [
        ("what payment methods do you accept?", "payments#accepted-payment-methods"),
        ("is there a fee for cancelling?", "orders#cancellation-fees"),
        ("how do I reset my password?", "account#resetting-your-password"),
    ]:
        assert plain.search(question)[0].passage.id == expected, question


class EvenEncoder:
    """A fake encoder that puts every question at the same cosine (`closeness`) from every policy sentence, so only
    the words (lexical, topics, periods) tell passages apart."""

    model_id = "even-fake"
    dim = 2

    def __init__(self, closeness: float) -> None:
        self.closeness = closeness

    def embed_batch(self, texts, progress=None):  # type: ignore[no-untyped-def]
        return np.tile(np.array([1.0, 0.0], dtype=np.float32), (len(texts), 1))

    def embed_query(self, text: str) -> np.ndarray:
        return np.array([self.closeness, (1 - self.closeness**2) ** 0.5], dtype=np.float32)


def topical(pid: str, text: str, topics: list[str]) -> Passage:
    return passage(pid, text).model_copy(update={"topics": topics})


RETURNS = [
    topical(
        "returns#condition",
        "Items must be unused. Shoes and boots worn outside can't be returned.",
        ["return", "worn"],
    ),
    topical(
        "returns#how-to-start-a-return",
        "Tell me the order number. Hand the parcel to the carrier.",
        ["return", "worn"],
    ),
    topical(
        "returns#window",
        "You can return most items within 30 days of delivery. The days start when your order arrives.",
        ["return", "worn"],
    ),
]


@pytest.mark.parametrize(
    "question",
    [
        "how long do I have to return shoes?",
        "what's your return window for shoes?",
        "I bought boots 5 weeks ago, can I still return them?",
    ],
)
def test_a_how_long_question_is_answered_by_the_period_not_by_its_product_word(question: str) -> None:
    index = PolicyIndex.build(RETURNS, EvenEncoder(0.6))
    hit = index.search(question, intent="check_refund_policy")[0]
    assert hit.passage.id == "returns#window"  # not the section that shares "shoes"/"boots", nor "how to"
    assert "30 days" in hit.quote()[0]


def test_question_words_match_nothing() -> None:
    index = PolicyIndex.build(RETURNS)  # BM25 alone
    assert index.search("how does it work?") == []  # "how" is not "How to start a return"
    assert index.search("how do I return boots?")[0].passage.id != "returns#how-to-start-a-return"


WARRANTY = [
    topical(
        "warranty#what-the-warranty-covers",
        "Our warranty lasts 1 year from delivery and covers defects. If an item stops working within that year, we "
        "repair it.",
        ["warranty", "stopped working", "broke"],
    ),
    topical(
        "warranty#making-a-claim",
        "To make a warranty claim, send us your order number and a photo of the fault.",
        ["warranty", "stopped working", "broke"],
    ),
    topical("returns#window", "You can return most items within 30 days of delivery.", ["return"]),
]


def test_a_question_that_names_a_policy_topic_gets_it_from_a_lower_closeness() -> None:
    index = PolicyIndex.build(WARRANTY, EvenEncoder(0.3))  # a product and a time dilute MiniLM's closeness so
    hits = index.search("my headphones stopped working after 3 months, is that covered?", k=3)
    assert hits[0].passage.id == "warranty#what-the-warranty-covers" and hits[0].relevant
    assert "1 year" in hits[0].quote()[0]  # the period the question's "3 months" is measured against
    assert not next(h for h in hits if h.passage.policy == "returns").relevant  # another policy's topic
    assert not any(h.relevant for h in index.search("my headphones are noisy, is that normal?"))  # no topic named
    far = PolicyIndex.build(WARRANTY, EvenEncoder(0.1))
    assert not any(h.relevant for h in far.search("my headphones stopped working, is that covered?"))


def test_a_question_naming_only_the_policy_gets_its_first_section() -> None:
    index = PolicyIndex.build(WARRANTY, EvenEncoder(0.6))
    assert index.search("what is your warranty?")[0].passage.id == "warranty#what-the-warranty-covers"
    assert index.search("how do I make a warranty claim?")[0].passage.id == "warranty#making-a-claim"


def test_policy_answer_quotes_the_best_relevant_passage() -> None:
    closer_off_topic = [
        topical("returns#window", "A blender you can't fix can be sent back within 30 days.", ["return"]),
        topical("warranty#covers", "Our warranty covers defects for 1 year.", ["broke"]),
    ]

    class Leaning(EvenEncoder):
        """The returns sentence closer than the warranty's, both under the plain threshold (0.41 and 0.26)."""

        def embed_batch(self, texts, progress=None):  # type: ignore[no-untyped-def]
            return np.stack([np.array([1.0, 0.0] if "blender" in t else [0.63, 0.78], dtype=np.float32) for t in texts])

        def embed_query(self, text: str) -> np.ndarray:
            return np.array([0.41, 0.0], dtype=np.float32)

    toolbox = Toolbox(policies.tools(ToolDeps(policies=PolicyIndex.build(closer_off_topic, Leaning(0.4)))))
    res = asyncio.run(toolbox.call("policy_answer", {"question": "my blender broke, can you fix it?"}, CTX))
    assert res.data["passages"][0]["id"] == "returns#window" and not res.data["passages"][0]["relevant"]
    assert res.data["answer"]["passage"] == "warranty#covers"
