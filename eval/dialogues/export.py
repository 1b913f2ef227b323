"""A stored conversation as a `Scenario` ("Save as test case"): the service builds the data
(`assistant.scenario_export`, since nothing in the service imports `eval/`); this validates it with the format's own
model, so an exported file is exactly what `load_file` reads."""

from __future__ import annotations

from typing import Any

from assistant.scenario_export import scenario_yaml, session_scenario
from eval.dialogues.scenario import Scenario

__all__ = ["scenario_from_session", "scenario_yaml"]


def scenario_from_session(session: dict[str, Any]) -> Scenario:
    """The scenario of a stored session (`Session.model_dump(mode="json")` or GET /v1/sessions/{id})."""
    return Scenario.model_validate(session_scenario(session))
