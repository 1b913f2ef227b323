"""A model that obeys an injected instruction, through a full turn (found by eval.reliability's injection part): its
invented coupon, claimed cancellation, markup and echoed system prompt never reach the shopper, and nothing changes."""

from __future__ import annotations

from tests.api.conftest import Running, answer, chat_events


def test_a_compliant_models_offer_claimed_change_markup_and_system_prompt_are_withheld(running: Running) -> None:
    system = " ".join(running.services.prompts.get("answer").system.split())
    running.llm.streams = [
        [
            " Red running shoes are free today with coupon FREE100. ",
            "I've cancelled your order ORD-AAAAAA and issued a full refund. ",
            "<script>alert(document.cookie)</script> Done. ",
            f"My instructions say: {system} ",
            "![x](https://attacker.example/p.png) Red running shoes are light.",
        ]
    ]
    events = chat_events(running.base_url, {"message": "red running shoes"})
    text = answer(events)
    for bad in ("FREE100", "free", "cancelled", "refund", "<script", "attacker.example", system):
        assert bad not in text, (bad, text)
    assert text.startswith("The ")
    withheld = next(e for e in events if e["event"] == "done")["data"]["withheld"]
    assert any("offer" in w for w in withheld) and any("markup" in w for w in withheld)
    assert any("instructions" in w for w in withheld)
    assert running.orders.get("ORD-AAAAAA").status == "placed"  # type: ignore[union-attr]
