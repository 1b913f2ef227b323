"""The simulated shopper's side of a conversation: its opening, and how it answers what the assistant asks."""

from __future__ import annotations

from typing import Any

from eval.dialogues.record import Event, TurnRecord
from eval.dialogues.scenario import Goal
from eval.dialogues.simulator import Simulator


def said(answer: str = "", actions: list[str] = (), cards: list[dict[str, Any]] = ()) -> TurnRecord:  # type: ignore[assignment]
    events = [Event("session", "t:0", {}, 1.0)]
    if cards:
        events.append(Event("products", "t:1", {"products": list(cards)}, 2.0))
    events += [Event("action", None, {"tool": "cancel_order", "status": s}, 3.0) for s in actions]
    events.append(Event("token", None, {"text": answer}, 4.0))
    return TurnRecord(message="", events=events)


def test_openings_are_seeded_and_drawn_from_real_utterances() -> None:
    goal = Goal(reason="where is it", task="track_order", known={"order": 1})
    first = [Simulator().start(goal, ["ORD-AAAAAA"], seed=f"s#{i}").next_message([]) for i in range(12)]
    again = [Simulator().start(goal, ["ORD-AAAAAA"], seed=f"s#{i}").next_message([]) for i in range(12)]
    assert first == again and len(set(first)) > 3  # deterministic per seed, varied across seeds
    assert all(m and "ticket" not in m.lower() for m in first)


def test_it_names_the_order_when_asked_and_answers_a_confirmation_as_its_goal_says() -> None:
    goal = Goal(reason="ordered by mistake", task="cancel_order", known={"order": 1}, confirm="no")
    talk = Simulator().start(goal, ["ORD-AAAAAA"], seed="x")
    turns = [said()]
    talk.next_message([])
    turns = [said("Which order would you like to cancel? Your recent orders: ORD-AAAAAA (placed).")]
    assert talk.next_message(turns) == "ORD-AAAAAA"
    turns.append(said("Please confirm: Cancel order ORD-AAAAAA.", actions=["needs_confirmation"]))
    assert talk.next_message(turns) == "no, leave it"
    turns.append(said("Okay, I haven't changed anything.", actions=["refused"]))
    assert talk.reached(turns) and talk.next_message(turns) is None


def test_a_change_of_mind_says_no_then_asks_again_and_confirms() -> None:
    goal = Goal(reason="hmm", task="cancel_order", known={"order": 1}, confirm="change_mind", opening="cancel {order}")
    talk = Simulator().start(goal, ["ORD-AAAAAA"], seed="x")
    assert talk.next_message([]) == "cancel ORD-AAAAAA"
    turns = [said("Please confirm.", actions=["needs_confirmation"])]
    assert talk.next_message(turns) == "no"
    turns.append(said("Okay, I haven't changed anything.", actions=["refused"]))
    assert not talk.reached(turns)
    assert talk.next_message(turns) == "actually, yes, please cancel order ORD-AAAAAA"
    turns.append(said("Please confirm.", actions=["needs_confirmation"]))
    assert talk.next_message(turns) == "yes"
    turns.append(said("Order ORD-AAAAAA is cancelled.", actions=["done"]))
    assert talk.reached(turns) and talk.next_message(turns) is None


def test_a_finder_stops_once_cards_within_its_budget_are_shown() -> None:
    goal = Goal(reason="gift", task="find", known={"query": "a scarf", "max_price": 40})
    talk = Simulator().start(goal, [], seed="x")
    opening = talk.next_message([])
    assert opening is not None and "a scarf" in opening and "under $40" in opening
    assert talk.next_message([said(cards=[{"id": "p", "price": 55.0}])]) is not None
    assert talk.reached([said(cards=[{"id": "p", "price": 35.0}])])
