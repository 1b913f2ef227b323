"""policy_answer on the real ABCD guidelines with the real MiniLM encoder: sensible passages, cited."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from assistant.stores.orders import RETURN_POLICY_REF
from assistant.tools import policies
from assistant.tools.base import Toolbox, ToolContext, ToolDeps
from retrieval.encoders import TextEncoder
from retrieval.factory import make_text_encoder
from retrieval.policies import PolicyIndex
from retrieval.settings import RetrievalSettings
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration
ABCD = SHARED_DATA / "policies" / "abcd"
CTX = ToolContext(shopper_id="1", session_id="s", turn_id="t")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> TextEncoder:
    return make_text_encoder(RetrievalSettings(data_dir=tmp_path_factory.mktemp("shop")))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ABCD / "guidelines.json").is_file():
        pytest.skip(f"shared data not found at {ABCD}")
    return tmp_path_factory.mktemp("policies")


@pytest.fixture(scope="module")
def index(encoder: TextEncoder, cache: Path) -> PolicyIndex:
    return PolicyIndex.load_or_build(ABCD, cache, encoder)


@pytest.fixture(scope="module")
def toolbox(index: PolicyIndex) -> Toolbox:
    return Toolbox(policies.tools(ToolDeps(policies=index)))


@pytest.mark.parametrize(
    ("question", "expected", "within"),
    [
        # The return-window passage (membership levels: 30 / 90 days, 6 months, unlimited).
        ("How many days do I have to return an item?", RETURN_POLICY_REF.removeprefix("policy:"), 3),
        ("How much does standard shipping cost?", "abcd:shipping_issue.cost:", 1),
        ("What are the membership levels?", "abcd:storewide_query.membership:", 1),
        ("I forgot my password and cannot log in", "abcd:account_access.recover_password:", 1),
        ("My promo code is not working", "abcd:purchase_dispute.promo_code_invalid:", 1),
    ],
)
def test_policy_answer_finds_the_right_passage(toolbox: Toolbox, question: str, expected: str, within: int) -> None:
    res = asyncio.run(toolbox.call("policy_answer", {"question": question, "limit": 3}, CTX))
    assert res.ok and len(res.data["passages"]) == 3
    ids = [p["id"] for p in res.data["passages"]]
    assert any(i.startswith(expected) for i in ids[:within]), ids
    assert res.citations == [f"policy:{i}" for i in ids]
    scores = [p["score"] for p in res.data["passages"]]
    assert scores == sorted(scores, reverse=True)


def test_the_return_window_passage_states_the_days(toolbox: Toolbox) -> None:
    res = asyncio.run(toolbox.call("policy_answer", {"question": "How many days do I have to return an item?"}, CTX))
    window = next(p for p in res.data["passages"] if f"policy:{p['id']}" == RETURN_POLICY_REF)
    assert "30 days" in window["text"] and "90 days" in window["text"] and "Gold" in window["text"]


def test_second_start_reuses_the_cached_vectors(index: PolicyIndex, encoder: TextEncoder, cache: Path) -> None:
    class Counting:
        model_id = encoder.model_id
        dim = encoder.dim
        batches = 0

        def embed_batch(self, texts, progress=None):  # type: ignore[no-untyped-def]
            Counting.batches += 1
            return encoder.embed_batch(texts, progress)

        def embed_query(self, text):  # type: ignore[no-untyped-def]
            return encoder.embed_query(text)

    again = PolicyIndex.load_or_build(ABCD, cache, Counting())  # type: ignore[arg-type]
    assert Counting.batches == 0 and again.vectors is not None
    question = "Do gold members pay for shipping?"
    assert [h.passage.id for h in again.search(question)] == [h.passage.id for h in index.search(question)]
