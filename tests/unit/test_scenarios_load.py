"""The dialogue scenario suites in eval/scenarios/: every file loads, names are unique and say which suite they
belong to, the suites CI runs (smoke + core) cover every intent group of the ontology, and there are enough
hand-written scenarios. Nothing here talks to the assistant; `python -m eval.dialogues SUITE` runs them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from assistant.intents.ontology import load_ontology
from assistant.settings import SHARED_DATA
from eval.dialogues.scenario import SCENARIOS_DIR, Scenario, load_file, load_suites

FILES = sorted(SCENARIOS_DIR.glob("*.yaml"))
# Each hand-written file's scenarios are named with its prefix and carry its tag.
PREFIX = {"smoke": ("smoke-", "smoke"), "quality": ("quality-", "quality"), "adversarial": ("adv-", "adversarial")}
PREFIX |= {"personalization": ("pers-", "personalization"), "esci": ("esci-", "esci")}
CI_SUITES = ["smoke", "core"]
MIN_HAND_WRITTEN = 80
DEMO_CATALOG = SHARED_DATA / "retail-demo-store" / "products.yaml"


def _raw(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _generated(path: Path) -> bool:
    raw = _raw(path)
    return isinstance(raw, dict) and "generate" in raw


def _hand_written() -> dict[Path, list[Scenario]]:
    return {f: load_file(f) for f in FILES if not _generated(f)}


def _suite_of(path: Path) -> str:
    return path.stem.split("-")[0]


def test_the_suites_exist() -> None:
    stems = {f.stem for f in FILES}
    assert {"smoke", "core-shopping", "core-orders", "core-service", "core-conversation"} <= stems
    assert {"quality", "adversarial", "personalization", "discovery"} <= stems


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_loads(path: Path) -> None:
    if _generated(path):
        raw = _raw(path)
        assert raw == {"generate": "esci", "queries": raw.get("queries")}, "a generated suite names only its source"
        assert isinstance(raw["queries"], int) and raw["queries"] > 0
        from eval.dialogues.discovery import ESCI_DIR

        if not (ESCI_DIR / "queries.tsv").is_file():
            pytest.skip(f"no ESCI data at {ESCI_DIR}")
        scenarios = load_file(path)
        assert len(scenarios) == raw["queries"]
        assert all("discovery" in s.tags and s.qrels for s in scenarios)
        return
    scenarios = load_file(path)
    assert scenarios, f"{path.name} holds no scenario"


def test_names_are_unique_across_all_suites() -> None:
    names = [s.name for scenarios in _hand_written().values() for s in scenarios]
    repeated = sorted(n for n, c in Counter(names).items() if c > 1)
    assert not repeated, f"repeated scenario names: {repeated}"
    # The loader's own check, over every suite at once (the generated one included when its data is there).
    suites = sorted({_suite_of(f) for f in FILES if not _generated(f)})
    assert len(load_suites(suites)) == len(names)


@pytest.mark.parametrize("path", [f for f in FILES if not _generated(f)], ids=lambda p: p.name)
def test_names_prefixes_tags_and_descriptions(path: Path) -> None:
    suite = _suite_of(path)
    prefix, tag = PREFIX.get(suite, ("core-", "core"))
    for s in load_file(path):
        assert s.name.startswith(prefix), f"{path.name}: {s.name} should start with {prefix!r}"
        assert tag in s.tags, f"{path.name}: {s.name} lacks the {tag!r} tag"
        if suite != "smoke":  # smoke.yaml predates the rule
            assert s.description.strip(), f"{path.name}: {s.name} has no description"
            assert "\n" not in s.description.strip(), f"{path.name}: {s.name}: the description is one line"


def test_ci_suites_cover_every_intent_group_twice() -> None:
    """Every group of the ontology appears in at least two smoke/core scenarios, by tag (the group in lower case)
    or by an intent of that group among a turn's expected intents."""
    groups = load_ontology().groups()
    scenarios = load_suites(CI_SUITES)
    missing = {}
    for group, intents in groups.items():
        covering = [
            s.name
            for s in scenarios
            if group.lower() in s.tags or any(set(t.expect.intent or []) & set(intents) for t in s.turns)
        ]
        if len(covering) < 2:
            missing[group] = covering
    assert not missing, f"intent groups covered by fewer than two smoke/core scenarios: {missing}"


def test_core_scenarios_are_tagged_core() -> None:
    for path in FILES:
        if path.stem.startswith("core"):
            assert all("core" in s.tags for s in load_file(path)), path.name


def test_enough_hand_written_scenarios() -> None:
    total = sum(len(v) for v in _hand_written().values())
    assert total >= MIN_HAND_WRITTEN, f"{total} hand-written scenarios, want at least {MIN_HAND_WRITTEN}"


def test_goal_scenarios_state_an_end_state_or_a_findable_goal() -> None:
    """A simulated shopper whose goal changes state (cancel, return, human) is judged on the stores: it has `final`."""
    for scenarios in _hand_written().values():
        for s in scenarios:
            if s.goal is not None and s.goal.task in ("cancel_order", "return_order", "human"):
                assert s.final is not None, f"{s.name}: a {s.goal.task} goal needs a final state"


@pytest.mark.skipif(not DEMO_CATALOG.is_file(), reason="no demo catalog in the shared data")
def test_product_ids_are_in_the_demo_catalog() -> None:
    """Fixture orders and prior events name real products (a typo only showed when the scenario ran)."""
    from retrieval.catalog import load_catalog

    ids = {p.id for p in load_catalog(DEMO_CATALOG, "retail-demo-store").products}
    unknown = []
    for scenarios in _hand_written().values():
        for s in scenarios:
            if s.catalog != "demo":
                continue
            added = {p.id for p in s.catalog_additions}
            named = [line.product_id for o in s.shopper.orders for line in o.items]
            named += [e.product_id for e in s.shopper.events]
            unknown += [f"{s.name}: {pid}" for pid in named if pid not in ids | added]
    assert not unknown, f"product ids the demo catalog does not hold: {unknown}"
