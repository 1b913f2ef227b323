"""The scenario format: the shipped JSON schema is current, and a bad file is refused with its name and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.dialogues.scenario import SCHEMA_PATH, ScenarioError, json_schema, load_file, load_suites


def test_the_shipped_schema_is_current() -> None:
    shipped = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert shipped == json_schema(), (
        "eval/dialogues/scenario.schema.json is stale: run "
        "`python -c 'from eval.dialogues.scenario import write_schema; write_schema()'`"
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- name: x\n  turns: [{say: hi, expect: {intnt: greeting}}]\n", "turns.0.expect.intnt"),
        ("- name: x\n", "either turns or a goal"),
        ("- name: x\n  turns: [{say: hi, expect: {references: [{turn: 1, rank: 1}]}}]\n", "only earlier turns"),
        (
            "- name: x\n  turns: [{say: hi, expect: {states: [{ref: {turn: 2, rank: 1}, fields: [price]}]}}]\n",
            "has not been shown yet",
        ),
        ("- name: x\n  turns: [{say: 'cancel {order}'}]\n", "names order 1; the shopper has 0"),
        ("- name: Bad Name\n  turns: [{say: hi}]\n", "a name is"),
        ("- name: x\n  turns: [{say: hi, expect: {text: {contains: '('}}}]\n", "not a regular expression"),
        ("name: x\n", "expected a list of scenarios"),
        ("- name: x\n  turns: [{say: hi}\n", "suite.yaml"),
    ],
)
def test_a_bad_scenario_is_refused_naming_the_file_and_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ScenarioError) as e:
        load_file(write(tmp_path, text))
    assert str(tmp_path / "suite.yaml") in str(e.value) and problem in str(e.value)


def test_suites_by_name_and_unique_names(tmp_path: Path) -> None:
    (tmp_path / "core.yaml").write_text("- {name: a, turns: [{say: hi}]}\n", encoding="utf-8")
    (tmp_path / "core-more.yaml").write_text("- {name: b, turns: [{say: hi}]}\n", encoding="utf-8")
    (tmp_path / "other.yaml").write_text("- {name: a, turns: [{say: hello}]}\n", encoding="utf-8")
    assert [s.name for s in load_suites(["core"], tmp_path)] == ["a", "b"]
    with pytest.raises(ScenarioError, match="repeated: a"):
        load_suites(["core", "other"], tmp_path)
    with pytest.raises(ScenarioError, match="no suite 'nope'"):
        load_suites(["nope"], tmp_path)


def test_discovery_suites_are_generated_from_the_judged_queries(tmp_path: Path) -> None:
    scenarios = load_file(write(tmp_path, "generate: esci\nqueries: 3\n"))
    assert len(scenarios) == 3 and all(s.catalog == "esci" and s.qrels and "discovery" in s.tags for s in scenarios)
    assert len({s.turns[0].say for s in scenarios}) == 3
