"""Holding one scenario's conversation and judging it: its turns, every turn's checks, the end state."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from eval.dialogues.checks import Failure, check_final, check_personalized, check_turn
from eval.dialogues.drivers import Driver
from eval.dialogues.global_checks import (
    Grounding,
    catalog_titles,
    direct_answer,
    grounding,
    stream_problems,
    unknown_products,
    wrong_card_prices,
)
from eval.dialogues.record import State, TurnRecord
from eval.dialogues.scenario import Scenario
from eval.dialogues.simulator import Simulator
from eval.metrics import ndcg_at

ORDER_SLOT = re.compile(r"\{order(?::(\d+))?\}")


@dataclass
class TrialResult:
    """One run of a scenario."""

    scenario: str
    trial: int
    passed: bool = False
    skipped: str | None = None
    failures: list[Failure] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    grounding: list[Grounding] = field(default_factory=list)  # per turn
    state: State | None = None
    ndcg5: float | None = None
    hallucinated: int = 0  # card or citation ids the catalog does not hold
    direct: list[bool] = field(default_factory=list)  # per price/stock question: answered in the first sentence
    wrong_prices: int = 0
    seconds: float = 0.0
    shopper_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "trial": self.trial,
            "passed": self.passed,
            "skipped": self.skipped,
            "failures": [f.to_json() for f in self.failures],
            "turns": [
                {**t.to_json(), "grounding": g.to_json()} for t, g in zip(self.turns, self.grounding, strict=False)
            ],
            "state": None if self.state is None else vars(self.state),
            "ndcg@5": self.ndcg5,
            "hallucinated": self.hallucinated,
            "direct_answers": self.direct,
            "wrong_prices": self.wrong_prices,
            "seconds": round(self.seconds, 2),
            "shopper_id": self.shopper_id,
        }


class Runner:
    """Runs scenarios through a driver; a fresh shopper id for every trial keeps trials independent."""

    def __init__(self, driver: Driver, simulator: Simulator | None = None) -> None:
        self.driver = driver
        self.simulator = simulator or Simulator()
        self._titles: dict[str, Any] = {}

    async def run(self, scenario: Scenario, trial: int = 1) -> TrialResult:
        result = TrialResult(scenario=scenario.name, trial=trial)
        reason = self.driver.skip_reason(scenario)
        if reason is not None:
            result.skipped = reason
            return result
        started = time.perf_counter()
        shopper = scenario.shopper.id or f"eval-{uuid.uuid4().hex[:12]}"
        result.shopper_id = shopper
        try:
            order_ids = await self.driver.prepare(scenario, shopper)
            session = await self._converse(scenario, shopper, order_ids, result)
            if scenario.final is not None:
                result.state = await self.driver.state(scenario, shopper, session, order_ids)
                result.failures += check_final(scenario.final, result.state, order_ids, result.turns)
        except Exception as e:  # the run itself broke: a failure of this trial, reported, not a crash of the suite
            result.failures.append(Failure("run", "the conversation to complete", f"{type(e).__name__}: {e}"))
        self._judge(scenario, result)
        result.seconds = time.perf_counter() - started
        result.passed = not result.failures
        return result

    async def _converse(
        self, scenario: Scenario, shopper: str, order_ids: list[str], result: TrialResult
    ) -> str | None:
        session: str | None = None
        if scenario.goal is not None:
            conversation = self.simulator.start(scenario.goal, order_ids, seed=f"{scenario.name}#{result.trial}")
            while (message := await conversation.next_message(result.turns)) is not None:
                rec = await self._turn(scenario, shopper, session, message)
                session = rec.session_id or session
                result.turns.append(rec)
            if not conversation.reached(result.turns):
                result.failures.append(Failure("goal", scenario.goal.task, conversation.outcome(result.turns)))
            return session
        for n, turn in enumerate(scenario.turns, start=1):
            message = ORDER_SLOT.sub(lambda m: order_ids[int(m.group(1) or 1) - 1], turn.say)
            rec = await self._turn(scenario, shopper, session, message)
            session = rec.session_id or session
            result.failures += check_turn(n, turn.expect, rec, result.turns)
            if turn.expect.personalized is not None:
                fresh = await self._turn(scenario, f"eval-{uuid.uuid4().hex[:12]}", None, message)
                result.failures += check_personalized(n, turn.expect, rec, fresh)
            result.turns.append(rec)
        return session

    async def _turn(self, scenario: Scenario, shopper: str, session: str | None, message: str) -> TurnRecord:
        rec = await self.driver.send(scenario, shopper, session, message)
        if rec.session_id and rec.turn_id:
            rec.trace = (await self.driver.traces(scenario, rec.session_id)).get(rec.turn_id, [])
        return rec

    def _judge(self, scenario: Scenario, result: TrialResult) -> None:
        """The checks every turn gets, whatever the scenario says."""
        try:
            catalog = self.driver.catalog(scenario)
        except KeyError:
            return
        if scenario.catalog not in self._titles:
            self._titles[scenario.catalog] = catalog_titles(catalog)
        titles = self._titles[scenario.catalog]
        for n, rec in enumerate(result.turns, start=1):
            for problem in stream_problems(rec):
                result.failures.append(Failure("stream", "session … done with ids <turn>:<seq>", problem, n))
            unknown = unknown_products(rec, catalog)
            result.hallucinated += len(unknown)
            if unknown:
                result.failures.append(Failure("catalog_ids", "ids the catalog holds", unknown, n))
            wrong = wrong_card_prices(rec, catalog)
            result.wrong_prices += len(wrong)
            if wrong:
                result.failures.append(Failure("card_prices", "the catalog's prices", wrong, n))
            g = grounding(rec, catalog, titles)
            result.grounding.append(g)
            answered = direct_answer(rec, catalog)
            if answered is not None:
                result.direct.append(answered)
            if g.violations:
                result.failures.append(Failure("grounded", "claims the turn's facts back", g.to_json(), n))
        if scenario.qrels is not None and result.turns:
            result.ndcg5 = ndcg_at([str(c.get("id")) for c in result.turns[0].cards], scenario.qrels, k=5)
