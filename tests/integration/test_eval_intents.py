"""`python -m eval.intents` on small slices of the shared intent data, with the real MiniLM (ONNX)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.intents import main
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.integration
INTENTS = SHARED_DATA / "intents"
ROOT = Path(__file__).resolve().parents[2]
LAST_LINE = re.compile(r"^accuracy=(\d+\.\d+) oos_recall=(\d+\.\d+|na) p50_ms=(\d+\.\d+) p99_ms=(\d+\.\d+)$")
REPORT_KEYS = {
    "accuracy",
    "oos_recall",
    "p50_ms",
    "p99_ms",
    "train_seconds",
    "per_intent_accuracy",
    "confusions_top",
    "config",
    "fit",
}


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    return path


def _take(rows: list[tuple[str, str]], n_intents: int, per_intent: int) -> list[tuple[str, str]]:
    by: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by[row[1]].append(row)
    keep = sorted(by)[:n_intents]
    return [r for label in keep for r in by[label][:per_intent]]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[Run, Path]]:
    """`python -m eval.intents ARGS` in this process: the heavy imports are paid once, not per run."""

    def run(*args: str) -> tuple[Run, Path]:
        out = tmp_path / "report.json"
        argv = [*args, "--json", str(out), "--cache", str(tmp_path / "cache.sqlite"), "--latency-sample", "30"]
        code = main(argv)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err), out

    return run


def test_module_entry_point_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "eval.intents", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0 and "--split-from" in proc.stdout


def _check(proc: Run, out: Path, oos: bool, min_accuracy: float) -> dict:
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = LAST_LINE.match(last)
    assert m, last
    report = json.loads(out.read_text())
    assert REPORT_KEYS <= set(report)
    assert float(m.group(1)) == pytest.approx(report["accuracy"], abs=1e-4)
    assert report["accuracy"] >= min_accuracy
    assert (m.group(2) != "na") is oos
    assert 0 < float(m.group(3)) <= float(m.group(4))
    return report


def _write_csv(path: Path, header: tuple[str, str], rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(("fmt", "header"), [("bitext", ("utterance", "intent")), ("banking77", ("text", "category"))])
def test_csv_formats_split_from_a_small_slice(
    tmp_path: Path, run_eval: Callable[..., tuple[Run, Path]], fmt: str, header: tuple[str, str]
) -> None:
    src = _need(INTENTS / fmt / "train.csv")
    with open(src, encoding="utf-8", newline="") as fh:
        rows = [(r[header[0]], r[header[1]]) for r in csv.DictReader(fh)]
    small = _write_csv(tmp_path / "small.csv", header, _take(rows, n_intents=10, per_intent=20))
    proc, out = run_eval("--split-from", str(small), "--format", fmt, "--test-fraction", "0.25")
    report = _check(proc, out, oos=False, min_accuracy=0.6)
    assert report["test_utterances"] == 50 and report["config"]["intents"] == 10
    assert report["oos_recall"] is None


def test_clinc150_train_and_test_files(tmp_path: Path, run_eval: Callable[..., tuple[Run, Path]]) -> None:
    data = json.loads(_need(INTENTS / "clinc150" / "train_val.json").read_text())
    train_rows = _take([(t, label) for t, label in data["train"]], n_intents=10, per_intent=20)
    intents = {label for _, label in train_rows}
    test_rows = _take([(t, label) for t, label in data["val"] if label in intents], n_intents=10, per_intent=5)
    train = {"train": train_rows, "oos_train": data["oos_train"][:40]}
    test = {"test": test_rows, "oos_test": data["oos_val"][:20]}
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "test.json").write_text(json.dumps(test))
    args = ["--train", str(tmp_path / "train.json"), "--test", str(tmp_path / "test.json"), "--format", "clinc150"]
    proc, out = run_eval(*args)
    report = _check(proc, out, oos=True, min_accuracy=0.6)
    assert report["in_scope"] == 50 and report["out_of_scope"] == 20
    assert report["config"]["oos_label"] == "oos" and report["fit"]["n_classes"] == 11


def test_bad_files_exit_2_with_a_message(tmp_path: Path, run_eval: Callable[..., tuple[Run, Path]]) -> None:
    bad_csv = _write_csv(tmp_path / "bad.csv", ("text", "label"), [("hello", "greeting")])
    proc, _ = run_eval("--train", str(bad_csv), "--test", str(bad_csv), "--format", "bitext")
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "missing column" in proc.stderr

    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    proc, _ = run_eval("--train", str(bad_json), "--test", str(bad_json), "--format", "clinc150")
    assert proc.returncode == 2 and "bad.json" in proc.stderr and "bad JSON" in proc.stderr

    no_test = tmp_path / "train_only.json"
    no_test.write_text(json.dumps({"train": [["hi", "greeting"], ["bye", "goodbye"]]}))
    proc, _ = run_eval("--train", str(no_test), "--test", str(no_test), "--format", "clinc150")
    assert proc.returncode == 2 and "missing list(s) ['test']" in proc.stderr


def test_finetuned_classifier_round_trips_through_save_and_load(tmp_path: Path) -> None:
    """One short epoch on a toy set: the saved directory alone rebuilds the same predictions."""
    from assistant.intents.classifier import IntentClassifier, default_encoder

    examples = {
        "track_order": ["where is my order", "track my parcel", "has my package shipped", "order status please"],
        "get_refund": ["i want my money back", "refund my purchase", "give me a refund", "money back please"],
        "oos": ["what is the weather", "play some jazz", "tell me a joke", "who won the game"],
    }
    texts = [t for ts in examples.values() for t in ts] * 2
    labels = [label for label, ts in examples.items() for _ in ts] * 2
    encoder = default_encoder(tmp_path / "models")
    clf = IntentClassifier(encoder, finetune_epochs=1, finetune_dir=tmp_path / "tuned", validation_fraction=0.25)
    report = clf.fit(texts, labels, oos_label="oos")
    assert clf.finetuned and report.finetune_seconds > 0 and clf.encoder.model_id != encoder.model_id
    queries = ["where's my parcel", "refund me", "sing a song"]
    before = [p.model_dump() for p in clf.predict(queries)]
    clf.save(tmp_path / "saved")
    loaded = IntentClassifier.load(tmp_path / "saved", default_encoder(tmp_path / "models"))
    assert loaded.finetuned and loaded.encoder.model_id == clf.encoder.model_id
    assert [p.model_dump() for p in loaded.predict(queries)] == before
