"""Policy passages: stable ids, a cached index rebuilt when the source changes, cited answers."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from assistant.stores.orders import RETURN_POLICY_REF, RETURN_WINDOW_DAYS
from assistant.tools import policies
from assistant.tools.base import Toolbox, ToolContext, ToolDeps
from retrieval.encoders import HashingEncoder
from retrieval.policies import PolicyIndex, load_passages
from tests.conftest import SHARED_DATA

ABCD = SHARED_DATA / "policies" / "abcd"
CTX = ToolContext(shopper_id="s1", session_id="sess", turn_id="t1")
MINI_GUIDELINES = {
    "Shipping Issue": {
        "description": "check or update a shipment",
        "subflows": {
            "Shipping Cost": {
                "instructions": ["The customer thinks shipping costs too much."],
                "actions": [
                    {
                        "type": "interaction",
                        "button": "Offer Refund",
                        "text": "Standard shipping is $8.00",
                        "subtext": [],
                    }
                ],
            }
        },
    },
    "Storewide Query": {
        "description": "FAQ about membership",
        "subflows": {
            "Membership FAQ": {
                "instructions": ["What are all the membership levels? Gold, silver, bronze and guest."],
                "actions": [],
            }
        },
    },
}


@pytest.fixture
def abcd() -> Path:
    if not (ABCD / "guidelines.json").is_file():
        pytest.skip(f"shared data not found at {ABCD}")
    return ABCD


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    src = tmp_path / "mini"
    src.mkdir()
    (src / "guidelines.json").write_text(json.dumps(MINI_GUIDELINES))
    return src


def test_abcd_passages_have_stable_unique_ids(abcd: Path) -> None:
    passages = load_passages(abcd)
    assert len(passages) > 100
    ids = [p.id for p in passages]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"abcd:[a-z0-9_]+\.[a-z0-9_]+:\d+", i) for i in ids)
    assert [p.id for p in load_passages(abcd)] == ids
    # Sections use the ontology's intent names (those kb.json lists steps for).
    size = next(p for p in passages if p.id == "abcd:product_defect.return_size:0")
    assert size.title == "Product Defect › Return Due to Size" and "Steps: pull up account" in size.text
    # The same action text in several subflows is one passage that says where it applies.
    window = next(p for p in passages if "within the last 90 days" in p.text)
    assert f"policy:{window.id}" == RETURN_POLICY_REF
    assert len(window.applies_to) == 3 and f"last {RETURN_WINDOW_DAYS} days" in window.text
    assert "<or" not in window.text and ": >" not in window.text


def test_index_is_cached_and_rebuilt_when_the_source_changes(mini: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    encoder = HashingEncoder(dim=64)
    first = PolicyIndex.load_or_build(mini, cache, encoder)
    built = next(cache.glob("mini-*"))
    stamp = (built / "passages.json").stat().st_mtime_ns
    assert len(list(built.glob("vectors-*.npy"))) == 1 and encoder.calls == 1
    second = PolicyIndex.load_or_build(mini, cache, encoder)
    assert (built / "passages.json").stat().st_mtime_ns == stamp and encoder.calls == 1  # nothing re-embedded
    assert [p.id for p in second.passages] == [p.id for p in first.passages]
    chunks = sum(len(p.chunks()) for p in first.passages)  # one vector per line of each passage
    assert second.vectors is not None and second.vectors.shape == (chunks, 64) and chunks > len(first.passages)

    changed = dict(MINI_GUIDELINES)
    changed["Account Access"] = {"description": "passwords", "subflows": {"Recover Password": {"actions": []}}}
    (mini / "guidelines.json").write_text(json.dumps(changed))
    third = PolicyIndex.load_or_build(mini, cache, encoder)
    assert "abcd:account_access.recover_password:0" in third.by_id
    assert [d.name for d in cache.iterdir()] == [next(cache.glob("mini-*")).name]  # the stale index is gone
    assert not built.exists()


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="guidelines.json"):
        PolicyIndex.load_or_build(tmp_path / "nowhere", tmp_path / "cache")


def test_policy_answer_returns_cited_passages(mini: Path, tmp_path: Path) -> None:
    toolbox = Toolbox(policies.tools(ToolDeps(policies=PolicyIndex.load_or_build(mini, tmp_path / "cache"))))
    res = asyncio.run(toolbox.call("policy_answer", {"question": "how much is standard shipping?"}, CTX))
    assert res.ok
    top = res.data["passages"][0]
    assert top["id"] == "abcd:shipping_issue.shipping_cost:1" and "$8.00" in top["text"]
    assert res.citations[0] == "policy:abcd:shipping_issue.shipping_cost:1"
    assert res.citations == [f"policy:{p['id']}" for p in res.data["passages"]]
    bad = asyncio.run(toolbox.call("policy_answer", {"question": ""}, CTX))
    assert not bad.ok and "question" in (bad.error or "")


def test_bm25_alone_finds_membership_in_abcd(abcd: Path, tmp_path: Path) -> None:
    shutil.copytree(abcd, tmp_path / "abcd")
    index = PolicyIndex.load_or_build(tmp_path / "abcd", tmp_path / "cache")
    hits = index.search("What are the membership levels?", k=3)
    assert hits[0].passage.id == "abcd:storewide_query.membership:0"
    assert hits[0].dense is None and hits[0].score == pytest.approx(1.0)
