"""python -m eval.recommendations [--users N] [--report DIR] [--data-dir DIR] [--seed S]

Two figures for gift and suggestion turns, in-process over the demo store with the facts-only fake model (they are
about which products are shown, not the wording), from the requests in eval/recommendations.yaml:

- budget: of the requests with a budget, the share whose turn shows at least 3 products priced within 1.5x the
  amount said ("about $40", "under $40", "around 40 dollars": 40);
- persona lift: N demo shoppers (users.json.gz, in file order) get the behaviour their persona implies (events
  drawn by retrieval.personas, as `shop-retrieval persona-events` seeds the demo) and ask each suggestion request,
  and so does a fresh shopper; the share of (shopper, request) pairs where the persona's categories make up more of
  the persona shopper's cards than of the fresh shopper's.

Writes DIR/recommendations.json and prints a one-line summary last:
budget_requests=<n> budget_ok=<f> lift_pairs=<n> lift=<f> lift_below_ceiling=<f> persona_share=<f>
fresh_share=<f>
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import string
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from eval.dialogues.drivers import InProcessDriver
from eval.dialogues.record import TurnRecord
from eval.dialogues.scenario import Scenario
from retrieval.personalization import refresh_profile
from retrieval.personas import load_users, persona_categories, synthesize_events

REQUESTS = Path(__file__).with_name("recommendations.yaml")
DEFAULT_REPORT = Path("eval/out/recommendations")
WITHIN = 1.5  # a card is within the budget at up to 1.5x the amount said
ENOUGH = 3  # cards within it for the turn to count


class BudgetRequests(BaseModel):
    """Templates filled with every value of the slot they name ({recipient}, {occasion}, {interest}) and amount."""

    model_config = ConfigDict(extra="forbid")

    templates: list[str] = Field(min_length=1)
    recipient: list[str] = Field(default_factory=list)
    occasion: list[str] = Field(default_factory=list)
    interest: list[str] = Field(default_factory=list)
    amount: list[float] = Field(min_length=1)

    def expand(self) -> list[tuple[str, float]]:
        """(message, amount) for every template, slot value and amount, in file order."""
        out: list[tuple[str, float]] = []
        for template in self.templates:
            slots = {f for _, f, _, _ in string.Formatter().parse(template) if f and f != "amount"}
            if len(slots) > 1:
                raise ValueError(f"a template names at most one slot besides amount: {template!r}")
            slot = next(iter(slots), None)
            values: list[str | None] = list(getattr(self, slot)) if slot else [None]
            for value, amount in itertools.product(values, self.amount):
                fill = {"amount": f"{amount:g}", **({slot: value} if slot else {})}
                out.append((template.format(**fill), amount))
        return out


class Requests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget: BudgetRequests
    lift: list[str] = Field(min_length=1)


def load_requests(path: Path = REQUESTS) -> Requests:
    return Requests.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def within(cards: list[dict[str, Any]], amount: float) -> int:
    """How many cards are priced at most 1.5x the amount."""
    return sum(1 for c in cards if c.get("price") is not None and float(c["price"]) <= WITHIN * amount + 1e-9)


def share(cards: list[dict[str, Any]], categories: list[str]) -> float:
    """The share of cards in any of `categories` (any level of the category path)."""
    if not cards:
        return 0.0
    wanted = {c.lower() for c in categories}
    return sum(bool(wanted & {str(x).lower() for x in c.get("category_path") or []}) for c in cards) / len(cards)


@dataclass
class Results:
    budget: list[dict[str, Any]] = field(default_factory=list)
    lift: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        ok = [r["ok"] for r in self.budget]
        higher = [r["higher"] for r in self.lift]
        by_request: dict[str, list[bool]] = defaultdict(list)
        for r in self.lift:
            by_request[r["message"]].append(r["higher"])
        return {
            "budget_requests": len(ok),
            "budget_ok": round(sum(ok) / len(ok), 4) if ok else None,
            "budget_intents": dict(Counter(r["intent"] for r in self.budget)),
            "budget_failures": [r["message"] for r in self.budget if not r["ok"]],
            "lift_pairs": len(higher),
            "lift": round(sum(higher) / len(higher), 4) if higher else None,
            # Pairs a persona could win at all: the fresh shopper's cards were not already all of its categories.
            "lift_below_ceiling": _mean(float(r["higher"]) for r in self.lift if r["fresh_share"] < 1.0),
            "lift_by_request": {m: round(sum(v) / len(v), 4) for m, v in by_request.items()},
            "persona_share": _mean(r["persona_share"] for r in self.lift),
            "fresh_share": _mean(r["fresh_share"] for r in self.lift),
        }


def _mean(values: Any) -> float | None:
    v = list(values)
    return round(sum(v) / len(v), 4) if v else None


async def run(args: argparse.Namespace, requests: Requests) -> Results:
    from eval.dialogues.cli import in_process_builder

    scenario = Scenario(name="recommendations", turns=[{"say": requests.lift[0]}])  # type: ignore[list-item]
    results = Results()
    with tempfile.TemporaryDirectory(prefix="recommendations-") as tmp:
        build, _ = in_process_builder(argparse.Namespace(llm="fake", data_dir=args.data_dir), Path(tmp))
        driver = InProcessDriver(build, [scenario])
        try:

            async def ask(shopper: str, message: str) -> TurnRecord:
                return await driver.send(scenario, shopper, None, message)

            for message, amount in requests.budget.expand():
                rec = await ask(_fresh(), message)
                n = within(rec.cards, amount)
                results.budget.append(
                    {
                        "message": message,
                        "amount": amount,
                        "intent": rec.intent.get("intent"),
                        "cards": len(rec.cards),
                        "within": n,
                        "ok": n >= ENOUGH,
                        "answer": rec.answer,
                    }
                )
            fresh = {m: (await ask(_fresh(), m)).cards for m in requests.lift}
            services = await driver.services(scenario)
            profiles = services.catalog.profiles
            if profiles is None:
                raise RuntimeError("the service keeps no profiles: the persona lift needs them")
            products = list(services.engine.get_products(services.engine.lexical.ids).values())
            users = [u for u in load_users(args.users_file) if u.get("persona")][: args.users]
            for user in users:
                shopper = f"eval-persona-{user['id']}-{uuid.uuid4().hex[:8]}"
                rng = random.Random(f"{args.seed}:{user['id']}")
                events = synthesize_events({**user, "id": shopper}, products, rng, n=args.events)
                if not events:
                    continue
                profiles.add_events(events)
                refresh_profile(profiles, services.engine, shopper)
                categories = persona_categories(str(user["persona"]))
                for message in requests.lift:
                    rec = await ask(shopper, message)
                    mine, theirs = share(rec.cards, categories), share(fresh[message], categories)
                    results.lift.append(
                        {
                            "user": user["id"],
                            "persona": user["persona"],
                            "message": message,
                            "intent": rec.intent.get("intent"),
                            "persona_share": round(mine, 4),
                            "fresh_share": round(theirs, 4),
                            "higher": mine > theirs,
                        }
                    )
        finally:
            await driver.aclose()
    return results


def _fresh() -> str:
    return f"eval-{uuid.uuid4().hex[:12]}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from assistant.settings import SHARED_DATA

    ap = argparse.ArgumentParser(prog="python -m eval.recommendations", description=__doc__.split("\n\n")[1])
    ap.add_argument("--users", type=int, default=50, help="demo shoppers with a persona, in file order")
    ap.add_argument("--events", type=int, default=12, help="events per persona shopper (as the demo seeds them)")
    ap.add_argument("--seed", type=int, default=0, help="the events' random seed (as `persona-events --seed`)")
    ap.add_argument("--users-file", type=Path, default=SHARED_DATA / "retail-demo-store" / "users.json.gz")
    ap.add_argument("--requests", type=Path, default=REQUESTS, help="the requests file")
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/shop"), help="models, indexes, router")
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT, metavar="DIR")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    requests = load_requests(args.requests)
    started = time.perf_counter()
    results = asyncio.run(run(args, requests))
    figures = results.figures()
    report = {
        "figures": figures,
        "seconds": round(time.perf_counter() - started, 1),
        "budget": results.budget,
        "lift": results.lift,
    }
    args.report.mkdir(parents=True, exist_ok=True)
    (args.report / "recommendations.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for message, value in figures["lift_by_request"].items():
        print(f"lift {value:.3f}  {message}")
    if figures["budget_failures"]:
        print("budget requests short of 3 products within 1.5x: " + "; ".join(figures["budget_failures"][:20]))
    print(f"report: {args.report / 'recommendations.json'}")
    print(
        f"budget_requests={figures['budget_requests']} budget_ok={figures['budget_ok']} "
        f"lift_pairs={figures['lift_pairs']} lift={figures['lift']} lift_below_ceiling={figures['lift_below_ceiling']} "
        f"persona_share={figures['persona_share']} "
        f"fresh_share={figures['fresh_share']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
