"""A run's figures — pass^1, pass^k, grounded answers, discovery nDCG@5, first-token p95, by tag — and the files
it writes: results.json, JUnit XML, and the comparison with a baseline run."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from eval.dialogues.runner import TrialResult
from eval.dialogues.scenario import Scenario


def pass_hat_k(n: int, c: int, k: int) -> float:
    """τ-bench's pass^k for one task: the chance that k trials drawn from its n all pass (c of n passed)."""
    return math.comb(c, k) / math.comb(n, k) if n >= k else float("nan")


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass
class Figures:
    scenarios: int
    passed: int
    pass1: float | None
    passk: float | None
    grounded: float | None
    ndcg5: float | None
    ttft_p95_ms: float | None
    hallucinated: int
    skipped: int
    wrong_card_prices: int = 0
    direct_answers: float | None = None  # price/stock questions answered with the value in the first sentence

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def figures(scenarios: list[Scenario], trials: list[TrialResult], k: int) -> Figures:
    """Figures over the scenarios that ran (skipped ones are counted apart)."""
    by_name: dict[str, list[TrialResult]] = defaultdict(list)
    for t in trials:
        by_name[t.scenario].append(t)
    ran = [s for s in scenarios if by_name.get(s.name) and not any(t.skipped for t in by_name[s.name])]
    skipped = sum(1 for s in scenarios if any(t.skipped for t in by_name.get(s.name, [])))
    if not ran:
        return Figures(0, 0, None, None, None, None, None, 0, skipped)
    pass1 = sum(sum(t.passed for t in by_name[s.name]) / len(by_name[s.name]) for s in ran) / len(ran)
    passk = None
    if k > 1:
        passk = sum(pass_hat_k(len(by_name[s.name]), sum(t.passed for t in by_name[s.name]), k) for s in ran) / len(ran)
    answered = [g for s in ran for t in by_name[s.name] for g, r in zip(t.grounding, t.turns, strict=False) if r.answer]
    grounded = sum(g.violations == 0 for g in answered) / len(answered) if answered else None
    ndcgs = [t.ndcg5 for s in ran for t in by_name[s.name] if t.ndcg5 is not None]
    ttfts = [r.first_token_ms for s in ran for t in by_name[s.name] for r in t.turns if r.first_token_ms is not None]
    return Figures(
        scenarios=len(ran),
        passed=sum(all(t.passed for t in by_name[s.name]) for s in ran),
        pass1=pass1,
        passk=passk,
        grounded=grounded,
        ndcg5=sum(ndcgs) / len(ndcgs) if ndcgs else None,
        ttft_p95_ms=p95(ttfts),
        hallucinated=sum(t.hallucinated for s in ran for t in by_name[s.name]),
        skipped=skipped,
        wrong_card_prices=sum(t.wrong_prices for s in ran for t in by_name[s.name]),
        direct_answers=_share([d for s in ran for t in by_name[s.name] for d in t.direct]),
    )


def intent_paths(scenarios: list[Scenario], trials: list[TrialResult]) -> dict[str, Any]:
    """Which path decided each turn's intent (the `intent` event's source: rule, classifier, conversation rules,
    the model's parse) and how often it was right where the scenario states the intent; and for every turn the
    model was asked to parse, how its parse fared against the classifier's reading of the same message."""
    expected = {s.name: [t.expect.intent if t.expect else None for t in s.turns] for s in scenarios}
    paths: dict[str, dict[str, int]] = defaultdict(lambda: {"turns": 0, "checked": 0, "correct": 0})
    asked: dict[str, int] = defaultdict(int)
    parse_right = classifier_right = compared = 0
    for trial in trials:
        wants = expected.get(trial.scenario, [])
        for i, turn in enumerate(trial.turns):
            got = turn.intent
            if not got:
                continue
            want = wants[i] if i < len(wants) else None
            row = paths[str(got.get("source") or "unknown")]
            row["turns"] += 1
            if want:
                row["checked"] += 1
                row["correct"] += got.get("intent") in want
            parse = next((r.get("data") for r in turn.trace if r.get("name") == "model_parse"), None)
            if not isinstance(parse, dict):
                continue
            asked[str(parse.get("status"))] += 1
            choices = parse.get("choices") or []
            if want and parse.get("raw") and choices:
                compared += 1
                parse_right += (parse["raw"] or {}).get("intent") in want
                classifier_right += choices[0] in want
    out: dict[str, Any] = {
        name: {**row, "accuracy": row["correct"] / row["checked"] if row["checked"] else None}
        for name, row in sorted(paths.items())
    }
    out["model_parse"] = {
        "asked": sum(asked.values()),
        **dict(sorted(asked.items())),
        "compared": compared,
        "model_right": parse_right,
        "classifier_right": classifier_right,
    }
    return out


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def by_tag(scenarios: list[Scenario], trials: list[TrialResult], k: int) -> dict[str, Figures]:
    tags = sorted({tag for s in scenarios for tag in s.tags})
    return {tag: figures([s for s in scenarios if tag in s.tags], trials, k) for tag in tags}


def _fmt(v: float | None, digits: int = 3) -> str:
    return "na" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def summary_line(f: Figures) -> str:
    return (
        f"scenarios={f.scenarios} passed={f.passed} pass^1={_fmt(f.pass1)} pass^k={_fmt(f.passk)} "
        f"grounded={_fmt(f.grounded)} discovery_ndcg@5={_fmt(f.ndcg5)} ttft_p95_ms={_fmt(f.ttft_p95_ms, 1)}"
    )


def compare(trials: list[TrialResult], baseline: dict[str, Any]) -> dict[str, str]:
    """Per scenario against an earlier run: 'regression' (passed then, fails now), 'fixed', 'new', or 'same'."""
    before: dict[str, bool] = {}
    for item in baseline.get("scenarios", []):
        before[item["name"]] = bool(item.get("passed"))
    now: dict[str, bool] = {}
    for t in trials:
        if not t.skipped:
            now[t.scenario] = now.get(t.scenario, True) and t.passed
    out = {}
    for name, passed in now.items():
        if name not in before:
            out[name] = "new"
        elif before[name] and not passed:
            out[name] = "regression"
        elif passed and not before[name]:
            out[name] = "fixed"
        else:
            out[name] = "same"
    return out


def results_json(
    scenarios: list[Scenario],
    trials: list[TrialResult],
    k: int,
    meta: dict[str, Any],
    changes: dict[str, str] | None = None,
) -> dict[str, Any]:
    by_name: dict[str, list[TrialResult]] = defaultdict(list)
    for t in trials:
        by_name[t.scenario].append(t)
    return {
        "meta": meta,
        "figures": figures(scenarios, trials, k).to_json(),
        "intent_paths": intent_paths(scenarios, trials),
        "by_tag": {tag: f.to_json() for tag, f in by_tag(scenarios, trials, k).items()},
        "scenarios": [
            {
                "name": s.name,
                "tags": s.tags,
                "description": s.description,
                "passed": all(t.passed for t in by_name[s.name]) and not any(t.skipped for t in by_name[s.name]),
                "skipped": next((t.skipped for t in by_name[s.name] if t.skipped), None),
                "passes": sum(t.passed for t in by_name[s.name]),
                "trials": [t.to_json() for t in by_name[s.name]],
                "change": (changes or {}).get(s.name),
            }
            for s in scenarios
        ],
    }


def write_junit(path: Path, scenarios: list[Scenario], trials: list[TrialResult]) -> None:
    """One test case per scenario trial; a failed one carries its failures, a skipped one its reason."""
    suite = ET.Element("testsuite", name="dialogues")
    tags = {s.name: ",".join(s.tags) for s in scenarios}
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for t in trials:
        counts["tests"] += 1
        case = ET.SubElement(
            suite, "testcase", classname=f"dialogues.{tags.get(t.scenario, '')}", name=f"{t.scenario}#{t.trial}"
        )
        case.set("time", f"{t.seconds:.3f}")
        if t.skipped:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=t.skipped)
        elif not t.passed:
            counts["failures"] += 1
            failure = ET.SubElement(case, "failure", message=str(t.failures[0]) if t.failures else "failed")
            failure.text = "\n".join(str(f) for f in t.failures)
    for key, value in counts.items():
        suite.set(key, str(value))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def write_results(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
