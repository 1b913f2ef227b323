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
