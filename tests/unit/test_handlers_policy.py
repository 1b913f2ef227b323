"""The policy handler: the policy's own sentences first, cited; the next step or one model sentence after them; and
"I don't know" with a person offered when no policy answers."""

from __future__ import annotations

import asyncio

import pytest

from assistant.dialogue.references import Resolution
from assistant.grounding import CatalogTitles
from assistant.intents.slots import Slots
from assistant.intents.vocabulary import CatalogVocabulary
from assistant.planning.handlers import handler_for, support
from assistant.planning.plan import Deps, Plan, TurnContext, TurnInput, Understanding
from assistant.schemas import IntentEvent
from assistant.sessions.models import Session
from assistant.settings import SHIPPED_POLICIES
from assistant.tools import policies
from assistant.tools.base import Toolbox, ToolDeps
from assistant.trace import Trace
from retrieval.policies import PolicyIndex
from retrieval.policy_docs import load_passages


@pytest.fixture(scope="module")
def toolbox() -> Toolbox:
    # BM25 alone (no encoder): a passage sharing a word with the question is relevant enough.
    return Toolbox(policies.tools(ToolDeps(policies=PolicyIndex.build(load_passages(SHIPPED_POLICIES)))))


def plan(toolbox: Toolbox, message: str, intent: str, group: str = "REFUNDS") -> tuple[Plan, Trace]:
    inp = TurnInput(session=Session(session_id="s", shopper_id="1"), turn_id="t", message=message)
    event = IntentEvent(intent=intent, group=group, confidence=0.9, slots={})
    understood = Understanding(event=event, slots=Slots(), resolution=Resolution())
    deps = Deps(
        toolbox=toolbox,
        get_products=lambda ids: {},
        catalog_titles=CatalogTitles(()),
        vocab=CatalogVocabulary(),
        search_results=5,
        min_relevance=0.3,
    )
    trace = Trace()
    return asyncio.run(handler_for(intent, group)(TurnContext(inp, understood, trace, deps))), trace


def test_a_policy_question_is_answered_with_the_policy_sentence_first_and_cited(toolbox: Toolbox) -> None:
    result, trace = plan(toolbox, "is there a fee for cancelling?", "check_cancellation_fee", "CANCELLATION_FEE")
    reply = result.reply
    assert result.events == []
    assert reply.lead is not None and reply.lead.startswith("There is no fee for cancelling an order.")
    assert reply.lead.endswith(support.NEXT_STEP["check_cancellation_fee"])  # what the shopper can do next
    assert reply.prompt is None  # the next step ends the answer: the model adds nothing
    assert reply.citations == ["policy:orders#cancellation-fees"]
    call = next(e for e in trace.entries if e["name"] == "policy_answer")
    assert call["arguments"] == {"question": "is there a fee for cancelling?", "intent": "check_cancellation_fee"}


def test_the_model_may_add_one_sentence_from_the_rest_of_that_passage_only(toolbox: Toolbox) -> None:
    result, _ = plan(toolbox, "which delivery options do you have?", "delivery_options", "DELIVERY")
    reply = result.reply
    assert reply.citations == ["policy:shipping#delivery-options-and-costs"]
    assert reply.lead and "$5.99" in reply.lead and "$14.99" in reply.lead
    assert reply.prompt == "policy"
    rest = reply.variables["passage"]
    assert rest and all(s not in reply.lead for s in rest.split(". "))  # only what the lead did not say
    assert reply.facts is not None and {5.99, 14.99, 50.0} <= reply.facts.amounts


def test_warranty_price_match_and_privacy_questions_reach_the_policies(toolbox: Toolbox) -> None:
    result, _ = plan(toolbox, "do you price match?", "policy_question", "POLICY")
    assert result.reply.citations[0].startswith("policy:price-match#")
    assert result.reply.lead and "14 days" in result.reply.lead


def test_no_relevant_policy_says_so_and_offers_a_person(toolbox: Toolbox) -> None:
    result, _ = plan(toolbox, "zzz qqq", "switch_account", "ACCOUNT")
    assert result.reply.fixed == support.NOT_IN_POLICIES and "person" in support.NOT_IN_POLICIES
    assert result.reply.citations == [] and result.reply.lead is None
