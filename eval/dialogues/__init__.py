"""Offline dialogue evaluation: scenario suites held with the assistant, checked turn by turn and by end state.

Modules: `scenario` (the YAML format and its schema), `drivers` (in-process or HTTP), `runner` (one scenario's
conversation and its checks), `checks` (per-turn assertions, end state), `global_checks` (stream shape, catalog
ids, grounding of every answer), `simulator` (goal-driven shoppers), `discovery` (ESCI-judged scenarios),
`fake_llm` (`--llm fake`), `export` (a stored conversation as a scenario: the console's "Save as test case"),
`results` (figures, results.json, JUnit, baseline comparison), `cli`.
"""

from eval.dialogues.cli import main

__all__ = ["main"]
