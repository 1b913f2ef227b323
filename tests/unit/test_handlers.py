"""The handler table: every intent the router can return reaches a handler, and the right kind of one."""

from __future__ import annotations

from assistant.intents.ontology import load_ontology
from assistant.planning.handlers import DEFAULT, GROUPS, INTENTS, conversation, handler_for, support


def test_every_shopping_intent_has_a_handler_of_its_own() -> None:
    """A shopping intent that fell through to the policy answer would answer a product search from the
    return policy: a new shopping intent needs its handler."""
    ontology = load_ontology()
    shopping = [i.name for i in ontology.intents if i.group == "SHOPPING"]
    assert shopping and all(handler_for(name, "SHOPPING") is not DEFAULT for name in shopping)


def test_conversation_and_out_of_scope_go_by_group() -> None:
    ontology = load_ontology()
    for intent in ontology.intents:
        if intent.group == "CONVERSATION" and intent.name not in INTENTS:
            assert handler_for(intent.name, intent.group) is conversation.smalltalk
        if intent.group == "OUT_OF_SCOPE":
            assert handler_for(intent.name, intent.group) is conversation.out_of_scope


def test_customer_service_intents_without_a_handler_are_answered_from_the_policies() -> None:
    assert handler_for("delivery_period", "DELIVERY") is support.policy
    assert handler_for("contact_human_agent", "CONTACT") is support.handoff
    assert set(GROUPS) == {"CONVERSATION", "OUT_OF_SCOPE"}


def test_the_intents_the_rewrite_rules_produce_have_handlers() -> None:
    for intent in ("product_question", "variant_question", "cancel_order", "get_refund", "confirm_action"):
        assert intent in INTENTS


def test_a_refined_search_keeps_the_kind_and_swaps_the_constraint() -> None:
    from assistant.planning.handlers.catalog import refined_search

    previous = {"query": "red jackets", "limit": 5, "category": "jacket", "color": "Red", "max_price": 100.0}
    swapped = refined_search(previous, {"color": "Blue", "max_price": None})
    assert swapped == {"query": "jackets", "category": "jacket", "color": "Blue", "max_price": 100.0}
    cheaper = refined_search({"query": "sneakers", "category": "sneaker", "max_price": 100.0}, {"max_price": 60.0})
    assert cheaper == {"query": "sneakers", "category": "sneaker", "max_price": 60.0}
    # A catalog without a colour field: the old colour was a word of the query only.
    titled = refined_search({"query": "red jackets"}, {"color": "Blue"})
    assert titled == {"query": "jackets", "color": "Blue"}
