"""Request, response and SSE event models of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from assistant.stores.feedback import Feedback
from retrieval.cards import ProductCard  # the one card shape; used here and re-exported to the service
from retrieval.filters import FilterParams

# "<turn_id>:<seq>", as every logged event's id (assistant.sessions.models.parse_event_id reads it).
EVENT_ID_PATTERN = r"^[0-9a-f]{32}:(0|[1-9][0-9]{0,8})$"


class ChatRequest(BaseModel):
    """One shopper message; no session_id starts a new session."""

    # Python's regular expressions, so `\S` means here what it means to `str.strip` (and to Python clients).
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    message: str = Field(
        min_length=1,
        pattern=r"\S",
        description="not only whitespace; at most SHOP_MAX_MESSAGE_CHARS characters (this schema's maxLength; 422 "
        "`message_too_long` beyond)",
    )
    session_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="the session to continue; needed with Last-Event-ID"
    )
    shopper_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the shopper a new session is for: agent keys must name one, a widget key only its own",
    )


# --- SSE events: `event:` is the class's `event` literal, `data:` its JSON, `id:` "<turn_id>:<seq>".


class SessionEvent(BaseModel):
    event: Literal["session"] = "session"
    session_id: str
    turn_id: str
    shopper_id: str
    resumed: bool = False


class IntentEvent(BaseModel):
    event: Literal["intent"] = "intent"
    intent: str
    group: str
    confidence: float
    slots: dict[str, Any]
    slot_sources: dict[str, str] = Field(default_factory=dict)
    references: list[str] = Field(default_factory=list, description="product ids the message referred to")
    source: str | None = Field(
        default=None,
        description="what decided the intent: 'rule' (greeting/thanks), 'classifier', 'conversation' (the session's "
        "rules), 'model' (the model's validated parse), 'empty'",
    )


class ProductsEvent(BaseModel):
    event: Literal["products"] = "products"
    products: list[ProductCard]


class TokenEvent(BaseModel):
    event: Literal["token"] = "token"
    text: str


class CitationEvent(BaseModel):
    event: Literal["citation"] = "citation"
    ids: list[str] = Field(description="'product:<id>', 'policy:<id>' or 'order:<id>' behind the answer")


class ActionEvent(BaseModel):
    """A state-changing tool: asked for confirmation, or done."""

    event: Literal["action"] = "action"
    tool: str
    status: Literal["needs_confirmation", "done", "refused"]
    description: str
    result: dict[str, Any] = Field(default_factory=dict)


class HandoffEvent(BaseModel):
    event: Literal["handoff"] = "handoff"
    ticket_id: str
    reason: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorEvent(BaseModel):
    event: Literal["error"] = "error"
    error: ErrorBody


class DoneEvent(BaseModel):
    event: Literal["done"] = "done"
    turn_id: str
    status: Literal["completed", "failed", "cancelled"]
    withheld: list[str] = Field(default_factory=list, description="claims the grounding check removed")


class ErrorResponse(BaseModel):
    """The one JSON error shape of every non-2xx response."""

    error: ErrorBody


class ChatResponse(BaseModel):
    """The non-streaming variant: the same content as the event stream, gathered."""

    session_id: str
    turn_id: str
    status: str
    intent: IntentEvent | None = None
    products: list[ProductCard] = Field(default_factory=list)
    answer: str = ""
    citations: list[str] = Field(default_factory=list)
    actions: list[ActionEvent] = Field(default_factory=list)
    handoff: HandoffEvent | None = None
    error: ErrorBody | None = None
    withheld: list[str] = Field(default_factory=list)


class EventIn(BaseModel):
    """Shopper behaviour posted by the widget, for personalization."""

    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)
    kind: Literal["view", "click", "add_to_cart", "purchase"]
    at: datetime | None = Field(default=None, description="ISO-8601 time; default now")
    shopper_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="whose event: agent keys must name one, a widget key only its own",
    )


MAX_EVENTS = 500


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


# A filter value: one of the repeated query parameter's values, never empty.
FilterValue = Annotated[str, Field(min_length=1, max_length=200)]


def _one_or_many(v: object) -> object:
    return [v] if isinstance(v, str) else v


# Text with something in it: a character that is neither whitespace nor one of the separators (\x1c-\x1f) that
# Python's str.strip() also removes (JSON Schema patterns match anywhere in the string).
SOME_TEXT = r"[^\s\x1c-\x1f]"


class SearchQuery(FilterParams):
    """GET /v1/search query parameters; unknown ones are ignored. min_price may not be above max_price (422)."""

    q: str = Field(
        min_length=1,
        max_length=500,
        pattern=SOME_TEXT,
        description="what the shopper is looking for (at least one character that is not a space)",
    )
    k: int = Field(default=10, ge=1, le=50, description="how many products to return")
    # Over HTTP a filter's values are the repeated parameter's, none of them empty (`color=` is a 422, not "any").
    brand: Annotated[list[FilterValue] | None, BeforeValidator(_one_or_many)] = Field(
        default=None, max_length=50, description="acceptable brands (any of)"
    )
    color: Annotated[list[FilterValue] | None, BeforeValidator(_one_or_many)] = Field(
        default=None, max_length=50, description="acceptable colors (any of)"
    )
    category: Annotated[list[FilterValue] | None, BeforeValidator(_one_or_many)] = Field(
        default=None, max_length=50, description="acceptable categories, any level (any of)"
    )
    shopper_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="agent keys only: the shopper to personalise for"
    )


class SearchResponse(BaseModel):
    query: str
    products: list[ProductCard]


# --- visitor identity and the widget


class VisitorRequest(BaseModel):
    """POST /v1/visitors: the token the page kept, and/or the store's signed logged-in shopper (shopper_id and
    shopper_signature together or neither: 422 otherwise)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"shopper_id": {"type": "null"}, "shopper_signature": {"type": "null"}}},
                {
                    "required": ["shopper_id", "shopper_signature"],
                    "properties": {"shopper_id": {"type": "string"}, "shopper_signature": {"type": "string"}},
                },
            ]
        },
    )

    visitor_token: str | None = Field(
        default=None, max_length=2048, description="the token the page holds; renewed while valid for this key"
    )
    shopper_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="the store's logged-in shopper (with its signature)"
    )
    shopper_signature: str | None = Field(
        default=None,
        min_length=64,
        max_length=64,
        description="hex HMAC-SHA256 of shopper_id with the publishable key's identity secret, made by the store's "
        "server",
    )


class VisitorTokenResponse(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    shopper_id: str
    expires_at: datetime


class WidgetConfig(BaseModel):
    """What the widget may show on this deployment."""

    image_search: bool = Field(description="photo search is configured (POST /v1/search/image)")
    languages: list[str]
    default_language: str
    store_name: str


# --- feedback and the cart


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(min_length=1, max_length=64)
    turn_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=1000)


class FeedbackList(BaseModel):
    session_id: str
    feedback: list[Feedback]


class CartItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=256)
    quantity: int = Field(default=1, ge=1, le=99)
    shopper_id: str | None = Field(default=None, min_length=1, max_length=64, description="agent keys only")


class CartLine(BaseModel):
    product_id: str
    quantity: int
    unit_price: float | None
    subtotal: float
    product: ProductCard


class CartResponse(BaseModel):
    shopper_id: str
    items: list[CartLine]
    count: int = Field(description="items in the cart, quantities summed")
    total: float
    currency: str | None = Field(description="the lines' currency; None for an empty cart (or mixed currencies)")


# --- a person in the conversation (agent takeover): session stream events and the agent endpoints


class MessageEvent(BaseModel):
    """A person's message: the shopper's while an agent owns the session, or the agent's."""

    model_config = ConfigDict(populate_by_name=True)

    event: Literal["message"] = "message"
    sender: Literal["shopper", "agent"] = Field(serialization_alias="from", validation_alias="from")
    name: str | None = Field(default=None, description="the agent's name as the shopper sees it")
    text: str
    internal: bool = Field(default=False, description="an agent's note: stored, shown to agents, never to the shopper")
    at: datetime


class AgentJoinedEvent(BaseModel):
    event: Literal["agent_joined"] = "agent_joined"
    name: str


class AgentLeftEvent(BaseModel):
    event: Literal["agent_left"] = "agent_left"
    name: str | None = None
    to: Literal["bot", "closed"] = Field(description="who has the conversation now: the bot, or nobody (closed)")


class TypingEvent(BaseModel):
    """Someone is typing; live only (not logged, no id)."""

    model_config = ConfigDict(populate_by_name=True)

    event: Literal["typing"] = "typing"
    sender: Literal["shopper", "agent"] = Field(serialization_alias="from", validation_alias="from")
    name: str | None = None


class StateEvent(BaseModel):
    """The session's state changed (bot, waiting_for_agent, agent, closed)."""

    event: Literal["state"] = "state"
    state: Literal["bot", "waiting_for_agent", "agent", "closed"]
    agent_name: str | None = None
    since: datetime


class AgentActionEvent(ActionEvent):
    """An action an agent took with the tools during a takeover: who, with which arguments. A proposal awaiting the
    agent's confirmation is `internal` (agents only)."""

    by: str | None = Field(default=None, description="the agent's name")
    arguments: dict[str, Any] = Field(default_factory=dict)
    internal: bool = False


class TakeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="Customer service", min_length=1, max_length=64, description="shown to the shopper")


class AgentMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)
    internal: bool = Field(default=False, description="a note for agents: stored, never sent to the shopper")


# The tools an agent may use (every tool of assistant.tools but the handoff); one this deployment lacks is a 409.
AgentTool = Literal[
    "search_products",
    "get_product",
    "compare_products",
    "order_status",
    "cancel_order",
    "start_return",
    "policy_answer",
    "add_to_cart",
    "remove_from_cart",
    "view_cart",
]


class AgentActionIn(BaseModel):
    """A tool the owning agent uses for the shopper; a change (cancel, return) is proposed first, then confirmed."""

    model_config = ConfigDict(extra="forbid")

    tool: AgentTool = Field(description="409 `not_configured` for a tool this deployment has not configured")
    arguments: dict[str, Any] = Field(default_factory=dict)
    confirm: bool = Field(default=False, description="carry out the change proposed by the same call without it")


class LoggedEvent(BaseModel):
    """An event as logged: its id (`<turn_id>:<seq>`), name and data."""

    id: str
    event: str
    data: dict[str, Any]


class Delivered(BaseModel):
    """POST /v1/chat while a person owns the session: the message went to them, no bot turn ran."""

    session_id: str
    delivered_to: Literal["agent"] = "agent"
    agent_name: str | None
    event_id: str = Field(description="the logged `message` event's id, as the session stream carries it")
    state: Literal["agent"] = "agent"


class Typed(BaseModel):
    delivered: bool = Field(description="false when nobody is there to see it (the bot has the session)")


class QueueEntry(BaseModel):
    """A session as the agents' queue shows it."""

    session_id: str
    shopper_id: str
    state: Literal["bot", "waiting_for_agent", "agent", "closed"]
    since: datetime
    waiting_s: float | None = Field(description="seconds the shopper has waited for a person (waiting_for_agent)")
    agent_name: str | None
    handoff: dict[str, Any] | None = Field(
        description="reason, summary, facts, model_summary (with model_summary_at, model_summary_status, "
        "model_summary_note), ticket_id, waiting_since"
    )
    last_message: str | None = Field(description="the shopper's latest message")
    turns: int
    intent: str | None = Field(default=None, description="the intent of the bot's latest turn")


class Queue(BaseModel):
    sessions: list[QueueEntry]
