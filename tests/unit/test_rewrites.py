"""The intent rewrite rules: what the conversation so far does to the classifier's intent, one row at a time."""

from __future__ import annotations

import pytest

from assistant.planning.rewrites import REWRITES, Signals, rewrite

P = ("p1",)

CASES = [
    # (what the session says, message, routed intent/group) -> (intent, group, rule that fired)
    ("nothing shown", "show me red shoes", "search_products", "SHOPPING", {}, "search_products", "SHOPPING", []),
    (
        "an out-of-scope message the catalog matches well",
        "a snow globe",
        "out_of_scope",
        "OUT_OF_SCOPE",
        {"catalog_match": 0.7, "rescue_relevance": 0.55},
        "search_products",
        "SHOPPING",
        ["the catalog carries it"],
    ),
    (
        "an out-of-scope message the catalog matches poorly",
        "what's the weather",
        "out_of_scope",
        "OUT_OF_SCOPE",
        {"catalog_match": 0.2, "rescue_relevance": 0.55},
        "out_of_scope",
        "OUT_OF_SCOPE",
        [],
    ),
    (
        "small talk that points at a shown product",
        "nice, tell me more about that one",
        "greeting",
        "CONVERSATION",
        {"refs": P, "reference_kind": "pronoun"},
        "product_question",
        "SHOPPING",
        ["points at shown products"],
    ),
    (
        "a search that points at the second card",
        "how much is the second one",
        "search_products",
        "SHOPPING",
        {"refs": P, "reference_kind": "ordinal"},
        "product_question",
        "SHOPPING",
        ["points at shown products"],
    ),
    (
        "a search whose words name a product by title only",
        "red running shoes",
        "search_products",
        "SHOPPING",
        {"refs": P, "reference_kind": "title"},
        "search_products",
        "SHOPPING",
        [],
    ),
    (
        "compare that picked one product",
        "which one is the cheapest?",
        "compare_products",
        "SHOPPING",
        {"refs": P, "reference_kind": "comparative"},
        "product_question",
        "SHOPPING",
        ["one product picked"],
    ),
    (
        "a colour asked of a shown product",
        "does it come in black",
        "product_question",
        "SHOPPING",
        {"refs": P, "reference_kind": "pronoun", "has_constraint": True},
        "variant_question",
        "SHOPPING",
        ["asks for a variant"],
    ),
    (
        "cancel it, after an order turn",
        "cancel it",
        "complaint",
        "FEEDBACK",
        {"order_context": "ORD-AAAAAA"},
        "cancel_order",
        "ORDER",
        ["cancels the order just discussed"],
    ),
    (
        "a long cancel message that does not point at the order",
        "how do I cancel a newsletter subscription I signed up for",
        "newsletter_subscription",
        "NEWSLETTER",
        {"order_context": "ORD-AAAAAA"},
        "newsletter_subscription",
        "NEWSLETTER",
        [],
    ),
    (
        "return that, after an order turn",
        "I want to return that",
        "get_refund",
        "REFUNDS",
        {"order_context": "ORD-AAAAAA"},
        "get_refund",
        "REFUNDS",
        ["returns the order just discussed"],
    ),
    (
        "cancel wins over return in one short message",
        "cancel the return",
        "get_refund",
        "REFUNDS",
        {"order_context": "ORD-AAAAAA"},
        "cancel_order",
        "ORDER",
        ["cancels the order just discussed"],
    ),
    (
        "yes, after a confirmation request",
        "yes",
        "greeting",
        "CONVERSATION",
        {"pending": True},
        "confirm_action",
        "ACTION",
        ["answers the confirmation asked for"],
    ),
    (
        "no, after a confirmation request",
        "no thanks",
        "greeting",
        "CONVERSATION",
        {"pending": True},
        "confirm_action",
        "ACTION",
        ["answers the confirmation asked for"],
    ),
    ("yes, with nothing to confirm", "yes", "greeting", "CONVERSATION", {}, "greeting", "CONVERSATION", []),
    (
        "refund my order by its number",
        "please refund my order ORD-2X4ULU",
        "check_refund_policy",
        "REFUNDS",
        {"names_order": True},
        "get_refund",
        "REFUNDS",
        ["returns an order of theirs"],
    ),
    (
        "I'd like to return my order",
        "I'd like to return my order",
        "track_order",
        "ORDER",
        {},
        "get_refund",
        "REFUNDS",
        ["returns an order of theirs"],
    ),
    (
        "a question about the return rules stays a question",
        "can I return boots I've already worn outside?",
        "check_refund_policy",
        "REFUNDS",
        {},
        "check_refund_policy",
        "REFUNDS",
        [],
    ),
    (
        "cancel my order",
        "please cancel my order",
        "complaint",
        "FEEDBACK",
        {},
        "cancel_order",
        "ORDER",
        ["cancels an order of theirs"],
    ),
    (
        "a question about cancellation fees stays a question",
        "is there a fee to cancel my order?",
        "check_cancellation_fee",
        "CANCELLATION_FEE",
        {},
        "check_cancellation_fee",
        "CANCELLATION_FEE",
        [],
    ),
    (
        "a price question naming a catalog product by its title",
        "how much is the Minimalist Elegance Chronograph Watch?",
        "compare_products",
        "SHOPPING",
        {"refs": P, "reference_kind": "named"},
        "product_question",
        "SHOPPING",
        ["one product picked", "names a catalog product"],
    ),
    (
        "what's in my cart",
        "what's in my cart?",
        "track_order",
        "ORDER",
        {},
        "view_cart",
        "SHOPPING",
        ["asks what is in the cart"],
    ),
    (
        "add to the cart is not a look at it",
        "add it to my cart",
        "cart_add",
        "SHOPPING",
        {"refs": P, "reference_kind": "pronoun"},
        "cart_add",
        "SHOPPING",
        [],
    ),
    (
        "when will I get my refund, right after a return",
        "when will I get my refund?",
        "check_refund_policy",
        "REFUNDS",
        {"order_context": "ORD-AAAAAA"},
        "track_refund",
        "REFUNDS",
        ["asks about the refund of the order just discussed"],
    ),
    (
        "an order number alone",
        "ORD-8MNLZ8",
        "compare_products",
        "SHOPPING",
        {},
        "track_order",
        "ORDER",
        ["names only an order"],
    ),
    (
        "the first one, after 'which order would you like to cancel?'",
        "the first one",
        "product_question",
        "SHOPPING",
        {"answers": ("cancel_order", "ORDER")},
        "cancel_order",
        "ORDER",
        ["answers the question asked"],
    ),
]


@pytest.mark.parametrize(
    ("case", "message", "intent", "group", "session", "want_intent", "want_group", "want_rules"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_a_rule_rewrites_the_intent_only_where_the_conversation_says_so(
    case: str,
    message: str,
    intent: str,
    group: str,
    session: dict[str, object],
    want_intent: str,
    want_group: str,
    want_rules: list[str],
) -> None:
    got = rewrite(Signals(message=message, intent=intent, group=group, **session))  # type: ignore[arg-type]
    assert got == (want_intent, want_group, want_rules)


def test_rules_see_what_the_rows_before_them_decided() -> None:
    """An out-of-scope message the catalog carries becomes a search, and a pointing search a product question."""
    signals = Signals(
        message="that one",
        intent="out_of_scope",
        group="OUT_OF_SCOPE",
        refs=P,
        reference_kind="pronoun",
        catalog_match=0.9,
        rescue_relevance=0.5,
    )
    intent, group, fired = rewrite(signals)
    assert (intent, group) == ("product_question", "SHOPPING")
    assert fired == ["the catalog carries it", "points at shown products"]


def test_every_rule_has_a_distinct_name_and_is_exercised_here() -> None:
    names = [r.name for r in REWRITES]
    assert len(set(names)) == len(names)
    covered = {rule for case in CASES for rule in case[-1]}
    assert covered == set(names)
