"""Intent rewrite rules: where the conversation so far overrides the classifier's reading of one message.

The classifier sees the message alone. These rules see what the session showed and asked: "the second one" after
a product list is a question about that product, "yes" after a confirmation request answers it, "cancel it" after
an order turn cancels that order. Each rule is one row; they apply in order, each seeing the intent the rows
before it left.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from assistant import answers
from assistant.planning import policy_questions
from assistant.planning.gift_words import recipient_pattern

SEARCH = frozenset({"search_products", "recommendation"})
# Reference kinds that point at shown products even when the classifier heard a new search.
POINTING = frozenset({"ordinal", "comparative", "pronoun", "plural", "other"})
_CANCEL = re.compile(r"\bcancel\b")
_RETURN = re.compile(r"\breturn\b")
_POINTER = re.compile(r"\b(?:it|this|that|this order|that order)\b")
_RETURN_REFUND = re.compile(r"\b(?:return|refund|send (?:it |this |them )?back|money back)\b")
_MY_ORDER = re.compile(r"\bmy (?:last |recent |latest )?(?:order|purchase)\b")
# Questions about the rules, not requests: "can I return…", "is there a fee to cancel…", "how long do refunds take".
_RULES_QUESTION = re.compile(
    r"^\s*(?:can (?:i|you)|could i|is it possible|is there|are there|what(?:'s| is| are)?|how (?:long|much|many|does)"
    r"|do you|does|will|when do)\b|\b(?:policy|fee|fees|charge|charged|window|allowed)\b"
)
_OOS = "OUT_OF_SCOPE"
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget) (?:all |any |the |your |previous |prior |above )+(?:instructions|rules|prompts?)\b"
    r"|\bsystem prompt\b|\b(?:developer|admin|god) mode\b|\byou are now\b"
)
# A task that is not shopping: writing code, essays or homework for the shopper.
_OTHER_TASK = re.compile(
    r"\b(?:write|code|program|debug|fix|solve|translate|compose|do)\b(?:\s+\w+){0,4}?\s+"
    r"(?:(?:a|an|the|my|some|this)\s+)?(?:python|javascript|java|sql|bash|c\+\+)?\s*"
    r"(?:script|code|program|function|essay|poem|homework|assignment|equation|cover letter|thesis)\b"
)
_DISTRESS = re.compile(r"\b(?:kill myself|killing myself|suicid\w*|end my life|hurt myself|self[- ]harm)\b")
_DEMANDS_PERSON = re.compile(
    r"\b(?:get|give|put|transfer|connect|want|need|let me (?:talk|speak) to)\b.{0,30}"
    r"\b(?:your manager|a manager|the manager|supervisor|a real person|a human|a person|someone real)\b"
)
_CHAT_GROUPS = frozenset({"OUT_OF_SCOPE", "CONVERSATION"})
_CART_VIEW = re.compile(
    r"^(?!.*\b(?:add|put|remove|delete|take)\b).*(?:\b(?:what(?:'s| is)|show|view|see|check|open)\b.*\b(?:my|the) "
    r"(?:cart|basket)\b|^\s*(?:my|the) (?:cart|basket)\s*\??\s*$)"
)
_REFUND_STATUS = re.compile(r"\brefund\b.*\b(?:when|where|status|yet|arrive|come)\b|\b(?:when|where)\b.*\brefund\b")
_ONLY_ORDER = re.compile(r"(?:order\s*(?:number|no\.?|#)?\s*)?ORD[-_ ]?[A-Z0-9]{6}[.!?]?", re.I)
_SUGGESTION = re.compile(r"\b(?:gifts?|presents?|recommend\w*|suggest\w*|ideas?\s+for|surprise\s+me)\b")
_THANKS = re.compile(r"^\s*(?:thanks|thank you|thx|ty|great|cool|nice|ok|okay|perfect)\b")
_AGENT = re.compile(
    r"\b(?:human|agent|person|representative|someone|somebody|operator|staff|manager|talk|speak|call)\b"
)
_CHEAPER = re.compile(
    r"\b(?:something|anything|any|some|stuff|things?|options?|alternatives?|ones|choices)(?:\s+\w+){0,2}?\s+"
    r"(?:cheaper|less\s+expensive|more\s+affordable|lower[- ]priced|less\s+pricey)\b"
    r"|\b(?:cheaper|less\s+expensive|more\s+affordable|lower[- ]priced)\s+(?:options?|alternatives?|ones|stuff"
    r"|choices|things|versions?)\b|(?P<too>\btoo\s+(?:expensive|pricey)\b)"
)


def _asks_for_suggestion(s: Signals) -> bool:
    """A request for a gift or a suggestion ("any gift ideas for my brother?", "anything for my dog?") the
    classifier read as a search, small talk, out of scope, or a request for a person."""
    low = s.low
    if s.refs or _THANKS.match(low) or not (_SUGGESTION.search(low) or recipient_pattern().search(low)):
        return False
    if s.intent == "search_products" or s.group in {"CONVERSATION", "OUT_OF_SCOPE", "FEEDBACK"}:
        return True
    return s.group == "CONTACT" and not _AGENT.search(low)


def _asks_for_cheaper(s: Signals) -> bool:
    """ "Anything cheaper?", "cheaper options", "these are too expensive" after a list (not "the cheaper one")."""
    m = _CHEAPER.search(s.low)
    if m is None or (s.refs and not m.group("too")):
        return False
    return s.intent in SEARCH | {"product_question", "compare_products"} or s.group in {"CONVERSATION", "OUT_OF_SCOPE"}


@dataclass(frozen=True)
class Signals:
    """What the rules read: the message, the intent so far, and what the session showed or asked."""

    message: str
    intent: str
    group: str
    refs: tuple[str, ...] = ()
    reference_kind: str = "none"
    has_constraint: bool = False  # "does it come in black": a colour or size asked of a referenced product
    catalog_match: float | None = None  # best catalog similarity, measured only for out-of-scope messages
    rescue_relevance: float = 1.0
    order_context: str | None = None  # the one order the previous turn was about
    pending: bool = False  # the previous turn asked the shopper to confirm a change
    answers: tuple[str, str] | None = None  # (intent, group) of a question the message answers ("which order?")
    names_order: bool = False  # the message itself names an order number
    refines: bool = False  # the message only changes a constraint of the search behind the latest list

    @property
    def low(self) -> str:
        return self.message.lower()

    @property
    def about_it(self) -> bool:
        """A short or pointing message ("cancel it", "return that one"): it may act on the order just shown."""
        return len(self.low.split()) <= 4 or bool(_POINTER.search(self.low))


@dataclass(frozen=True)
class Rewrite:
    """When `when` holds, the intent becomes `intent` (and the group `group`, unless None: kept); `to` instead
    computes (intent, group) from the signals."""

    name: str
    when: Callable[[Signals], bool]
    intent: str = ""
    group: str | None = None
    to: Callable[[Signals], tuple[str, str]] | None = None


REWRITES: tuple[Rewrite, ...] = (
    # The classifier knows shopping only from examples; the catalog knows what the store sells.
    Rewrite(
        "the catalog carries it",
        lambda s: s.group == "OUT_OF_SCOPE" and s.catalog_match is not None and s.catalog_match >= s.rescue_relevance,
        "search_products",
        "SHOPPING",
    ),
    Rewrite(
        "points at shown products",
        lambda s: bool(s.refs)
        and (s.group in {"OUT_OF_SCOPE", "CONVERSATION"} or (s.intent in SEARCH and s.reference_kind in POINTING)),
        "product_question",
        "SHOPPING",
    ),
    # "which one is the cheapest?" picked one product out of those shown.
    Rewrite("one product picked", lambda s: s.intent == "compare_products" and len(s.refs) == 1, "product_question"),
    Rewrite(
        "asks for a variant",
        lambda s: s.has_constraint and bool(s.refs) and s.intent in SEARCH | {"product_question"},
        "variant_question",
        "SHOPPING",
    ),
    # "no, I meant the blue one", "actually under $60" after a list: the same search with the constraint changed.
    Rewrite(
        "changes a constraint of the last search",
        lambda s: s.refines and not s.refs and not s.pending and s.answers is None and s.group != "ORDER",
        "search_products",
        "SHOPPING",
    ),
    # Gifts and open suggestions have their own handler (planning/handlers/recommend.py), as does "something
    # cheaper" after a list: the cheaper ones of the kind shown, not a search for the words.
    Rewrite("asks for a gift or a suggestion", _asks_for_suggestion, "recommendation", "SHOPPING"),
    Rewrite("asks for something cheaper", _asks_for_cheaper, "cheaper_alternatives", "SHOPPING"),
    Rewrite(
        "cancels the order just discussed",
        lambda s: s.order_context is not None and s.about_it and bool(_CANCEL.search(s.low)),
        "cancel_order",
        "ORDER",
    ),
    Rewrite(
        "returns the order just discussed",
        lambda s: s.order_context is not None
        and s.about_it
        and bool(_RETURN.search(s.low))
        and not _CANCEL.search(s.low),
        "get_refund",
        "REFUNDS",
    ),
    Rewrite("names only an order", lambda s: bool(_ONLY_ORDER.fullmatch(s.message.strip())), "track_order", "ORDER"),
    # "please refund my order ORD-…", "I'd like to return my order": a request to act on an order, whatever the
    # classifier made of it (a question about the rules, "can I return worn boots?", names no order of theirs).
    Rewrite(
        "returns an order of theirs",
        lambda s: bool(_RETURN_REFUND.search(s.low))
        and not _CANCEL.search(s.low)
        and (s.names_order or bool(_MY_ORDER.search(s.low)))
        and not _RULES_QUESTION.search(s.low),
        "get_refund",
        "REFUNDS",
    ),
    Rewrite(
        "cancels an order of theirs",
        lambda s: bool(_CANCEL.search(s.low))
        and (s.names_order or bool(_MY_ORDER.search(s.low)))
        and not _RULES_QUESTION.search(s.low),
        "cancel_order",
        "ORDER",
    ),
    # "can I return worn boots?", "is there a fee to cancel (it)?", "do you offer express shipping?": a question about
    # a store policy that names no order of theirs is answered from the policies, as the topic's intent.
    Rewrite(
        "asks about a store policy",
        lambda s: policy_questions.asked(s) is not None,
        to=lambda s: policy_questions.asked(s) or (s.intent, s.group),
    ),
    # "how much is the Minimalist Elegance Chronograph Watch?": a question about that product, by its full title.
    Rewrite(
        "names a catalog product",
        lambda s: s.reference_kind == "named"
        and (s.intent in SEARCH | {"compare_products", "product_question"} or s.group in _CHAT_GROUPS),
        "product_question",
        "SHOPPING",
    ),
    Rewrite("asks what is in the cart", lambda s: bool(_CART_VIEW.search(s.low)), "view_cart", "SHOPPING"),
    # "when will I get my refund?" right after a return: that order's refund, not the refund rules.
    Rewrite(
        "asks about the refund of the order just discussed",
        lambda s: s.order_context is not None and bool(_REFUND_STATUS.search(s.low)),
        "track_refund",
        "REFUNDS",
    ),
    # "ignore previous instructions…", "print your system prompt": not a request the store can act on.
    Rewrite("tries to instruct the assistant", lambda s: bool(_INSTRUCTION.search(s.low)), "out_of_scope", _OOS),
    # "can you write me a python script": a task for someone else, whichever intent its words resembled.
    Rewrite(
        "asks for another kind of task",
        lambda s: not s.refs and bool(_OTHER_TASK.search(s.low)),
        "out_of_scope",
        _OOS,
    ),
    # "get me your manager", and anyone in distress: a person, whatever the classifier heard.
    Rewrite(
        "asks for a person, or is in distress",
        lambda s: s.intent != "contact_human_agent" and bool(_DISTRESS.search(s.low) or _DEMANDS_PERSON.search(s.low)),
        "contact_human_agent",
        "CONTACT",
    ),
    # "the first one" / "ORD-…" after "Which order would you like to cancel?": the question's own intent.
    Rewrite("answers the question asked", lambda s: s.answers is not None, to=lambda s: s.answers or ("", "")),
    Rewrite(
        "answers the confirmation asked for",
        lambda s: s.pending and (answers.is_affirmative(s.message) or answers.is_negative(s.message)),
        "confirm_action",
        "ACTION",
    ),
)


def rewrite(signals: Signals, rules: tuple[Rewrite, ...] = REWRITES) -> tuple[str, str, list[str]]:
    """(intent, group, names of the rules that fired), applying `rules` in order."""
    fired: list[str] = []
    for rule in rules:
        if rule.when(signals):
            intent, group = rule.to(signals) if rule.to is not None else (rule.intent, rule.group or signals.group)
            signals = replace(signals, intent=intent, group=group)
            fired.append(rule.name)
    return signals.intent, signals.group, fired
