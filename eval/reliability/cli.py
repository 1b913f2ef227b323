"""Reliability and security suite: tries to break the running service and prints what held.

python -m eval.reliability [--quick] [--report DIR] [--parts fuzz,authz,...] [--seed-data-dir DIR] [--keep]

Parts (README "Reliability and security" lists what each tries): fuzz (Schemathesis over the OpenAPI schema, plus
hand-made bad input), authz (every endpoint x every credential x own/other's session; rate limits), injection
(a prompt-injection and abuse corpus through full turns), catalog (malformed and hostile catalog files; hostile
titles in the widget and console, in Chromium), load (concurrent SSE conversations, memory and descriptors; slow
and vanishing clients), faults (kill -9 mid-turn, the model server killed and stopped, disk full), stores (the
Chroma server, Redis and PostgreSQL stopped and restarted under traffic).

Prints a table, writes DIR/reliability.json and DIR/reliability.md (the checks as a markdown table), and ends with
the line `requests=<n> server_errors=<n> hung_streams=<n> lost_turns=<n> cross_reads=<n> unconfirmed_writes=<n>`.
Exit status 0 only when nothing broke.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from eval.reliability.client import counting_client
from eval.reliability.stack import Service, StubModel, ensure_seed, service
from eval.reliability.tally import Tally

PARTS = ("fuzz", "authz", "injection", "catalog", "load", "faults", "stores")
DEFAULT_REPORT = Path("eval/out/reliability")


@dataclass
class Context:
    """What a part gets: the mode, the shared Tally, a scratch dir, and ways to start services and clients."""

    quick: bool
    tally: Tally
    workdir: Path
    report_dir: Path
    seed: Path
    stub: StubModel
    _shared: Service | None = None
    _cleanup: list[Any] = field(default_factory=list)

    @contextmanager
    def service(self, name: str, llm_url: str | None = None, **overrides: str) -> Iterator[Service]:
        """A fresh `serve` process of its own (own data dir, SQLite unless overridden); stopped on exit."""
        with service(self.workdir, self.seed, llm_url or self.stub.base_url, name, **overrides) as svc:
            yield svc

    def shared(self) -> Service:
        """One service the non-destructive parts share (started on first use, stopped when the suite ends)."""
        if self._shared is None:
            cm = self.service("shared")
            self._shared = cm.__enter__()
            self._cleanup.append(cm)
        return self._shared

    def client(self, base_url: str, allow_503: bool = False, **kwargs: Any) -> httpx.AsyncClient:
        return counting_client(self.tally, base_url, allow_503=allow_503, **kwargs)

    def close(self) -> None:
        for cm in reversed(self._cleanup):
            cm.__exit__(None, None, None)
        self._cleanup.clear()


def machine() -> str:
    """The CPU's model name (platform.processor() is empty on Linux) and the core count."""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        name = ""
    return f"{name or platform.machine()}, {os.cpu_count()} cores"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def print_table(tally: Tally, seconds: dict[str, float]) -> None:
    rows = [("part", "check", "tried", "broke", "note")]
    rows += [(c.part, c.name, str(c.tried), str(c.broke), c.note) for c in tally.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("  ".join(r[j].ljust(widths[j]) if j < 2 else r[j].rjust(widths[j]) for j in range(4)) + "  " + r[4])
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  ----")
    for c in tally.checks:
        for ex in c.examples if c.broke else []:
            print(f"  broke: {c.part}/{c.name}: {ex}")
    print("seconds: " + ", ".join(f"{p} {s:.0f}" for p, s in seconds.items()))


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    """The run as markdown: a line saying when and where, then every check (README links the full run's)."""
    lines = [
        f"{'Quick' if report['quick'] else 'Full'} run of `python -m eval.reliability"
        f"{' --quick' if report['quick'] else ''}`, {report['date']}, commit {report['commit']}, {report['machine']}: "
        f"`{' '.join(f'{k}={v}' for k, v in report['counters'].items())}`.",
        "",
        "| part | check | tried | broke | note |",
        "|---|---|---:|---:|---|",
    ]
    lines += [
        f"| {c['part']} | {cell(c['name'])} | {c['tried']} | {c['broke']} | {cell(c['note'])} |"
        for c in report["checks"]
    ]
    return "\n".join(lines) + "\n"


def parse_parts(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in PARTS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"parts: a comma-separated subset of {', '.join(PARTS)}, got {text!r}")
    return [p for p in PARTS if p in names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.reliability", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the CI variant: fewer cases and shorter soaks")
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="write reliability.json (and plots) here")
    ap.add_argument("--parts", type=parse_parts, default=list(PARTS), help=f"subset of {','.join(PARTS)}")
    ap.add_argument(
        "--seed-data-dir",
        type=Path,
        default=Path(".cache/reliability/seed"),
        help="index and router built once and copied into each service's data dir",
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (service logs) after the run")
    args = ap.parse_args(argv)

    args.report.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="shop-reliability-"))
    tally = Tally()
    seconds: dict[str, float] = {}
    started = datetime.now(UTC)
    stub = StubModel(workdir)
    ctx = Context(args.quick, tally, workdir, args.report, args.seed_data_dir.resolve(), stub)
    try:
        stub.start()
        ensure_seed(ctx.seed, stub.base_url, workdir)
        for name in args.parts:
            t0 = time.monotonic()
            print(f"[reliability] part {name}{' (quick)' if args.quick else ''}", file=sys.stderr)
            module = importlib.import_module(f"eval.reliability.parts.{name}")
            try:
                asyncio.run(module.run(ctx))
            except Exception as e:  # a part that crashes is a finding, not the end of the suite
                traceback.print_exc()
                tally.check(name, "part ran to the end", 1, 1, f"{type(e).__name__}: {e}"[:200])
            seconds[name] = time.monotonic() - t0
    finally:
        ctx.close()
        stub.stop()
        if args.keep:
            print(f"[reliability] scratch dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "date": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "quick": args.quick,
        "parts": args.parts,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        **tally.to_json(),
        "passed": tally.broke == 0,
    }
    out = args.report / "reliability.json"
    out.write_text(json.dumps(report, indent=2))
    (args.report / "reliability.md").write_text(markdown(report))
    print_table(tally, seconds)
    print(f"report: {out}")
    print(tally.last_line())
    return 0 if tally.broke == 0 else 1
