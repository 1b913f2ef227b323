"""Questions about the store's rules: what the rewrite rule "asks about a store policy" reads in a message.

"Can I return boots I've worn outside?", "is there a fee to cancel?" and "do you offer express shipping?" ask what
the policies say; the classifier, seeing "return", "cancel" or "boots", sends some of them to the order flows, a
search or another policy's intent. A question (by its form) about a policy topic that names no order of the
shopper's is a policy question, of the topic's intent; "return my order ORD-…" is a request, which the order rows
of rewrites.py handle.
"""

from __future__ import annotations

import re
from typing import Protocol

# Intents a topic does not override: a request for a person, and what points at the cart.
KEEP = frozenset({"contact_human_agent", "complaint", "cart_add", "cart_remove", "confirm_action"})

ORDER_ID = re.compile(r"\bORD-[A-Z0-9]{6}\b", re.I)
# "my order", "my last package", "my refund": the shopper's own (unless they ask what happens if they order).
_MY_ORDER = re.compile(
    r"\b(?:my|our)\s+(?:(?:last|latest|recent|most recent|previous|current|new|first|second)\s+)?"
    r"(?:orders?|purchases?|packages?|parcels?|deliver(?:y|ies)|shipments?|refunds?|returns?)\b"
)
_THAT_ORDER = re.compile(r"\b(?:this|that|the same) (?:order|purchase|package|parcel|delivery|shipment)\b")
_HYPOTHETICAL = re.compile(r"\bif (?:i|we) (?:order|buy|purchase|place)\b|\bbefore (?:i|we) (?:order|buy|purchase)\b")
_QUESTION = re.compile(
    r"\?|^(?:so |and |but |also |hi |hello |hey |please )*(?:can|could|may|do|does|did|is|are|was|will|would|should|"
    r"shall|have|has|how|what|what's|whats|when|where|which|why|who|if|any)\b|\bpolic(?:y|ies)\b|"
    r"\b(?:tell me|i'd like to know|i want to know|i wonder|wondering|explain)\b"
)

_QUESTION_SENTENCE = re.compile(r"[^.!?]*\?")
_CANCEL = r"(?<!noise )(?<!noise-)\bcancel\w*"  # "noise-cancelling headphones" cancel nothing
_FEE = r"\b(?:fees?|charged?|charges|cost|costs|pay|penalt(?:y|ies)|free|anything)\b"
_WHEN = r"\b(?:after|once|before|until|when)\b.*\b(?:ship\w*|dispatch\w*|deliver\w*|arriv\w*|plac\w*)|how long\b"
# (intent, group, pattern): the first topic whose pattern the message matches; the order settles overlaps
# ("how long do I have to return it" is about returns, not delivery).
TOPICS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("check_cancellation_fee", "CANCELLATION_FEE", re.compile(f"{_CANCEL}.*{_FEE}|{_FEE}.*{_CANCEL}")),
    ("policy_question", "POLICY", re.compile(f"{_CANCEL}.*(?:{_WHEN})|cancel\\w* polic")),
    (
        "check_refund_policy",
        "REFUNDS",
        re.compile(
            r"\b(?:return\w*|refund\w*|exchang\w*|money back|send (?:it |them |\w+ )?back)\b|"
            r"\b(?:arriv\w*|came|comes|delivered|received) (?:\w+ )?(?:damaged|broken|faulty|defective|wrong)\b|"
            r"\bwrong (?:item|size|colou?r|product)\b"
        ),
    ),
    (
        "delivery_period",
        "DELIVERY",
        re.compile(
            r"\b(?:delivery|shipping|transit) times?\b|"
            r"\b(?:how long|how many (?:business )?days|how soon|how fast|how quickly|when will|when would)\b.*"
            r"\b(?:deliver\w*|ship\w*|arriv\w*|packages?|parcels?|orders?|get (?:here|there|to me|it|delivered))\b|"
            r"\bdeliver\w* on (?:weekends?|saturdays?|sundays?|holidays?)"
        ),
    ),
    (
        "delivery_options",
        "DELIVERY",
        re.compile(
            r"\b(?:(?:express|next[- ]day|overnight|same[- ]day|expedited|standard|free|fast(?:er|est)?|"
            r"international) (?:shipping|delivery)|(?:shipping|delivery) (?:options?|methods?|costs?|fees?|prices?|"
            r"rates?|charges?)|(?:ship|deliver)\w* (?:to|internationally|abroad|overseas|outside|express|overnight)|"
            r"how much (?:is|does|for|are) (?:the )?(?:shipping|delivery)|(?:cost|price) of (?:shipping|delivery)|"
            r"pay for (?:shipping|delivery))\b"
        ),
    ),
    (
        "check_payment_methods",
        "PAYMENT",
        re.compile(
            r"\b(?:pay|paying|payments?|paypal|apple pay|google pay|klarna|afterpay|installments?|cash on delivery|"
            r"bank transfer)\b|\b(?:accept|take)\w*\b.*\b(?:cards?|visa|mastercard|amex|american express|checks?|"
            r"cheques?|cash)\b"
        ),
    ),
    (
        "policy_question",
        "POLICY",
        re.compile(
            r"\b(?:warrant\w*|guarantee\w*)\b|\b(?:defect\w*|faulty|broke|broken|stopped working)\b.*"
            r"\b(?:covered|cover|fix\w*|repair\w*|replace\w*)\b"
        ),
    ),
    (
        "policy_question",
        "POLICY",
        re.compile(
            r"\bprice[- ]?match\w*|\bmatch (?:a |the |their |your |competitors?'? )?(?:lower )?prices?\b|"
            r"\bprice (?:drops?|adjustments?|protection)\b|\b(?:cheaper|lower price) (?:elsewhere|somewhere else)\b"
        ),
    ),
    (
        "policy_question",
        "POLICY",
        re.compile(
            r"\b(?:privacy|personal (?:data|information|info|details)|my (?:data|information)|data protection|"
            r"gdpr|ccpa|cookie policy|use cookies)\b"
        ),
    ),
    (
        "newsletter_subscription",
        "NEWSLETTER",
        re.compile(
            r"\b(?:unsubscrib\w*|newsletters?|(?:marketing|promotional) e-?mails?|stop (?:sending|e-?mailing))\b"
        ),
    ),
)
# Topics no tool acts on: a request about them ("please unsubscribe me from your emails") is answered from the
# policies too, question or not.
NO_ACTION_TOPICS = frozenset({"newsletter_subscription"})
# A topic's intents that already answer it from the policies: a routed one of these is kept.
ANSWERED_AS = {
    "DELIVERY": frozenset({"delivery_options", "delivery_period"}),
    "PAYMENT": frozenset({"check_payment_methods", "payment_issue"}),
}
# Topics a question about a product shown ("does it have a warranty?") asks of the product, not the store.
PRODUCT_TOPICS = frozenset({"warrant"})


def names_order(message: str) -> bool:
    """The message names one of the shopper's orders: its number, or "my order" (not "if I order today")."""
    low = message.lower()
    if ORDER_ID.search(message) or _THAT_ORDER.search(low):
        return True
    return bool(_MY_ORDER.search(low)) and not _HYPOTHETICAL.search(low)


def is_question(message: str) -> bool:
    return bool(_QUESTION.search(message.lower().strip()))


def asked_part(message: str) -> str:
    """The part of a message that asks: its questions when it has any ("…I'd rather pay more for quality. What
    backpacks do you have?" asks about backpacks, not payment), else the whole message."""
    questions = [q for q in _QUESTION_SENTENCE.findall(message) if q.strip()]
    return " ".join(questions) if questions else message


def policy_topic(message: str) -> tuple[str, str] | None:
    """(intent, group) of the policy topic the message asks about, or None."""
    low = asked_part(message).lower()
    for intent, group, pattern in TOPICS:
        if pattern.search(low):
            return intent, group
    return None


def policy_question(
    message: str, routed: str, about_order: bool = False, about_products: bool = False
) -> tuple[str, str] | None:
    """(intent, group) when the message asks what a store policy says and the routed intent would not answer it
    from the policies; None otherwise. `about_order`: the conversation points the message at an order ("can I
    return it?" after an order turn). A question about the cancellation fee is one even about an order."""
    topic = policy_topic(message) if routed not in KEEP else None
    if topic is None:
        return None
    intent, group = topic
    if intent not in NO_ACTION_TOPICS and not is_question(message):
        return None  # "I want to return these boots" asks for the return, not for the rules
    if intent != "check_cancellation_fee" and (about_order or names_order(message)):
        return None  # "can I return my order?": that order's return, which the order flow checks
    if about_products and any(w in message.lower() for w in PRODUCT_TOPICS):
        return None
    if routed == intent or routed in ANSWERED_AS.get(group, frozenset()):
        return None
    return topic


class Asked(Protocol):
    """What `asked` reads of the rewrite rules' signals."""

    @property
    def message(self) -> str: ...
    @property
    def intent(self) -> str: ...
    @property
    def refs(self) -> tuple[str, ...]: ...
    @property
    def order_context(self) -> str | None: ...
    @property
    def names_order(self) -> bool: ...
    @property
    def about_it(self) -> bool: ...


def asked(s: Asked) -> tuple[str, str] | None:
    """`policy_question` of a message in its conversation (the rewrite rule "asks about a store policy")."""
    about_order = s.names_order or (s.order_context is not None and s.about_it)
    return policy_question(s.message, s.intent, about_order=about_order, about_products=bool(s.refs))
