"""The session state machine: who may do what in which state (assistant/takeover.py)."""

from __future__ import annotations

import pytest

from assistant.errors import Forbidden, StateConflict
from assistant.takeover import BOT, SHOPPER, STATES, Actor, Control, allowed, decide

ANNA = Actor(kind="agent", agent_id="key-anna", name="Anna")
BEN = Actor(kind="agent", agent_id="key-ben", name="Ben")


def control(state: str = "bot", owner: Actor | None = None) -> Control:
    c = Control(session_id="s1", shopper_id="1", state=state)  # type: ignore[arg-type]
    if owner is not None:
        c = c.model_copy(update={"agent_id": owner.agent_id, "agent_name": owner.name})
    return c


def test_a_handoff_makes_the_session_wait_for_a_person_and_an_agent_takes_it() -> None:
    waiting = decide(control("bot"), "handoff", BOT)
    assert waiting.state == "waiting_for_agent"
    taken = decide(waiting, "take", ANNA)
    assert (taken.state, taken.agent_id, taken.agent_name) == ("agent", "key-anna", "Anna")
    assert taken.since >= waiting.since
    back = decide(taken, "hand_back", ANNA)
    assert (back.state, back.agent_id, back.handoff) == ("bot", None, None)


def test_the_bot_answers_in_every_state_but_agent() -> None:
    assert [s for s in STATES if control(s).bot_answers] == ["bot", "waiting_for_agent", "closed"]


def test_only_the_owner_writes_hands_back_or_closes_a_taken_session() -> None:
    taken = control("agent", ANNA)
    for action in ("agent_message", "hand_back", "close", "typing", "take"):
        assert allowed(taken, action, ANNA), action  # type: ignore[arg-type]
        with pytest.raises(StateConflict) as e:
            decide(taken, action, BEN)  # type: ignore[arg-type]
        assert e.value.details["agent_name"] == "Anna"
    assert allowed(taken, "note", BEN)  # any agent may leave a note
    assert decide(taken, "take", ANNA) == taken  # taking one's own session again changes nothing


@pytest.mark.parametrize("state", ["bot", "waiting_for_agent", "closed"])
def test_agents_message_and_hand_back_only_a_session_they_hold(state: str) -> None:
    for action in ("agent_message", "hand_back", "note", "typing"):
        with pytest.raises(StateConflict):
            decide(control(state), action, ANNA)  # type: ignore[arg-type]


def test_shoppers_and_the_bot_cannot_do_what_agents_do() -> None:
    for actor in (SHOPPER, BOT):
        for action in ("take", "agent_message", "note", "hand_back", "close"):
            with pytest.raises(Forbidden):
                decide(control("agent", ANNA), action, actor)  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        decide(control("bot"), "handoff", SHOPPER)


def test_the_shopper_writing_reopens_a_closed_session_with_the_bot() -> None:
    assert decide(control("closed"), "shopper_message", SHOPPER).state == "bot"
    taken = control("agent", ANNA)
    assert decide(taken, "shopper_message", SHOPPER) == taken
    with pytest.raises(StateConflict):
        decide(control("closed"), "close", ANNA)
    assert decide(control("closed"), "take", ANNA).state == "agent"


def test_a_second_handoff_keeps_the_first_wait() -> None:
    waiting = decide(control("bot"), "handoff", BOT)
    assert decide(waiting, "handoff", BOT) == waiting
    with pytest.raises(StateConflict):
        decide(control("agent", ANNA), "handoff", BOT)
