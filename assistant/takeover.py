"""Who talks to the shopper: the session's state machine (bot, waiting for a person, a person, closed).

`decide(control, action, actor)` is the whole rule book: it returns the session's next `Control` or raises
`StateConflict` (the action does not fit the state) or `Forbidden` (this caller may never do it). Nothing here
stores, streams or knows HTTP; `assistant/agent_service.py` applies the decisions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from assistant.errors import Forbidden, StateConflict
from assistant.sessions.models import utc_now

SessionState = Literal["bot", "waiting_for_agent", "agent", "closed"]
STATES: tuple[SessionState, ...] = ("bot", "waiting_for_agent", "agent", "closed")

Action = Literal[
    "shopper_message",  # the shopper writes (POST /v1/chat)
    "handoff",  # the bot's handoff_to_human tool opened a ticket
    "take",  # an agent takes the session over
    "agent_message",  # an agent writes to the shopper
    "note",  # an agent writes an internal note (never shown to the shopper)
    "agent_action",  # an agent uses a tool for the shopper (order status, cancel, return, cart)
    "typing",  # someone is typing
    "hand_back",  # the agent gives the session back to the bot
    "close",  # an agent closes the conversation
]


class Actor(BaseModel):
    """Who acts: the shopper, the bot, or an agent (`agent_id` from the agent's key, `name` as shown)."""

    kind: Literal["shopper", "bot", "agent"]
    agent_id: str | None = None
    name: str | None = None


SHOPPER = Actor(kind="shopper")
BOT = Actor(kind="bot")


class ShownProduct(BaseModel):
    """A product the bot showed the shopper, as the agent sees it in a handoff's facts."""

    product_id: str
    title: str
    price: float | None = None
    currency: str = "USD"


class HandoffFacts(BaseModel):
    """What the session shows for certain at a handoff (no model wrote any of it)."""

    reason: str
    asked: list[str] = Field(default_factory=list, description="the shopper's latest messages, oldest first")
    products: list[ShownProduct] = Field(default_factory=list, description="products shown, most recent last")
    orders: list[str] = Field(default_factory=list, description="order ids the conversation mentioned")


SummaryStatus = Literal["pending", "written", "dropped", "failed"]


class Handoff(BaseModel):
    """The bot's request for a person: why, a summary for the agent (the deterministic `facts`, their text in
    `summary`, and the model's summary, written after the handoff and kept only when the facts back it), since
    when the shopper waits."""

    ticket_id: str | None = None
    reason: str
    summary: str = ""
    facts: HandoffFacts | None = None
    model_summary: str | None = Field(default=None, description="the model's summary for the agent, when it passed")
    model_summary_at: datetime | None = Field(default=None, description="when the model's summary was stored")
    model_summary_status: SummaryStatus | None = Field(
        default=None, description="pending (being written), written, dropped (the check found it unbacked), failed"
    )
    model_summary_note: str | None = Field(default=None, description="why it was dropped or failed")
    waiting_since: datetime = Field(default_factory=utc_now)


class Control(BaseModel):
    """A session's state, stored beside it: who owns it since when, and the handoff that asked for a person."""

    session_id: str
    shopper_id: str
    state: SessionState = "bot"
    since: datetime = Field(default_factory=utc_now, description="when the session entered this state")
    agent_id: str | None = Field(default=None, description="the agent who owns it (state 'agent')")
    agent_name: str | None = None
    person_turn_id: str | None = Field(
        default=None, description="the open person turn: the log of the conversation while an agent owns it"
    )
    handoff: Handoff | None = None

    @property
    def bot_answers(self) -> bool:
        """A shopper's message starts a bot turn (else it goes to the person who owns the session)."""
        return self.state != "agent"

    def owned_by(self, actor: Actor) -> bool:
        return self.state == "agent" and actor.kind == "agent" and actor.agent_id == self.agent_id


# Which actor kinds may ever perform an action (else Forbidden), and in which states it fits (else StateConflict).
WHO: dict[Action, frozenset[str]] = {
    "shopper_message": frozenset({"shopper", "agent"}),  # an agent key may run a bot turn for a shopper
    "handoff": frozenset({"bot"}),
    "take": frozenset({"agent"}),
    "agent_message": frozenset({"agent"}),
    "note": frozenset({"agent"}),
    "agent_action": frozenset({"agent"}),
    "typing": frozenset({"shopper", "agent"}),
    "hand_back": frozenset({"agent"}),
    "close": frozenset({"agent"}),
}
WHEN: dict[Action, frozenset[SessionState]] = {
    "shopper_message": frozenset(STATES),
    "handoff": frozenset({"bot", "waiting_for_agent"}),
    "take": frozenset({"bot", "waiting_for_agent", "agent", "closed"}),  # 'agent': only its own owner, again
    "agent_message": frozenset({"agent"}),
    "note": frozenset({"agent"}),  # notes live in the person turn's log; any agent may add one
    "agent_action": frozenset({"agent"}),
    "typing": frozenset({"agent"}),
    "hand_back": frozenset({"agent"}),
    "close": frozenset({"bot", "waiting_for_agent", "agent"}),
}
OWNER_ONLY: frozenset[Action] = frozenset({"take", "agent_message", "agent_action", "typing", "hand_back", "close"})
"""In state 'agent', these need the owning agent (the shopper's typing aside)."""


def allowed(control: Control, action: Action, actor: Actor) -> bool:
    try:
        decide(control, action, actor)
    except (StateConflict, Forbidden):
        return False
    return True


def decide(control: Control, action: Action, actor: Actor, *, now: datetime | None = None) -> Control:
    """The session's control after `actor` does `action`: unchanged for actions that change no state."""
    if actor.kind not in WHO[action]:
        raise Forbidden(f"a {actor.kind} may not {action.replace('_', ' ')}")
    state = control.state
    if state not in WHEN[action]:
        raise StateConflict(
            f"cannot {action.replace('_', ' ')} while the session is {state!r}",
            {"state": state, "action": action},
        )
    if state == "agent" and action in OWNER_ONLY and actor.kind == "agent" and not control.owned_by(actor):
        raise StateConflict(
            f"the session is with {control.agent_name or 'another agent'}",
            {"state": state, "action": action, "agent_name": control.agent_name},
        )
    now = now or utc_now()
    if action == "shopper_message" and state == "closed":
        return _enter(control, "bot", now)  # writing again reopens the conversation, with the bot
    if action == "handoff" and state == "bot":
        return _enter(control, "waiting_for_agent", now)
    if action == "take" and state != "agent":
        moved = _enter(control, "agent", now)
        return moved.model_copy(update={"agent_id": actor.agent_id, "agent_name": actor.name})
    if action == "hand_back":
        return _enter(control, "bot", now).model_copy(update={"handoff": None})
    if action == "close":
        return _enter(control, "closed", now)
    return control


def _enter(control: Control, state: SessionState, now: datetime) -> Control:
    return control.model_copy(
        update={"state": state, "since": now, "agent_id": None, "agent_name": None, "person_turn_id": None}
    )
