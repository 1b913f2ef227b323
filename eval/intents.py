"""Intent routing quality: in-scope accuracy, out-of-scope recall and single-utterance latency.

python -m eval.intents --train T --test S --format bitext|clinc150|banking77 [--json OUT]
python -m eval.intents --split-from T --test-fraction 0.2 --seed 0 --format bitext|banking77 [--json OUT]
python -m eval.intents --split-from clinc150/train_val.json --format clinc150   (train+oos_train vs val+oos_val)
Add --finetune-epochs N to fine-tune the encoder first (minutes on a CPU; the tuned copy is cached by recipe).

The shared data holds training files only; --split-from makes a held-out test set from one of them
(stratified for CSVs; CLINC150's own val/oos_val lists for JSON) and writes both parts to a temp dir.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from assistant.intents.classifier import (
    DEFAULT_FINETUNE_DIR,
    DEFAULT_MAX_SEQ_LENGTH,
    IntentClassifier,
    default_encoder,
    stratified_split,
)
from eval.metrics import percentile
from retrieval.encoders import EmbeddingCache

FORMATS = ("bitext", "clinc150", "banking77")
CSV_COLUMNS = {"bitext": ("utterance", "intent"), "banking77": ("text", "category")}
CLINC_OOS = "oos"
LATENCY_WARMUP = 20
DEFAULT_CACHE = Path(".cache/intents/embedding-cache.sqlite")


class DataError(Exception):
    """A data file that cannot be used; the message names the file and the problem."""


def read_csv(path: Path, fmt: str) -> list[tuple[str, str]]:
    text_col, label_col = CSV_COLUMNS[fmt]
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in (text_col, label_col) if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing column(s) {missing} for format {fmt} (found {reader.fieldnames})")
            rows = []
            for n, row in enumerate(reader, start=2):
                text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
                if not text or not label:
                    raise DataError(f"{path}: line {n}: empty {text_col if not text else label_col}")
                rows.append((text, label))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV: {exc}") from exc
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def read_clinc(path: Path, keys: tuple[str, ...], required: tuple[str, ...]) -> list[tuple[str, str]]:
    """[text, intent] items from the lists `keys` of a data_full.json-shaped file; `required` must be there."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: bad JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with lists such as {list(required)}")
    absent = [k for k in required if k not in data]
    if absent:
        raise DataError(f"{path}: missing list(s) {absent} (has {sorted(data)})")
    rows = []
    for key in keys:
        items = data.get(key, [])
        if not isinstance(items, list):
            raise DataError(f"{path}: {key!r} is not a list")
        for i, item in enumerate(items):
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) and x for x in item)):
                raise DataError(f"{path}: {key}[{i}] is not a [text, intent] pair: {item!r}")
            rows.append((item[0], item[1]))
    if not rows:
        raise DataError(f"{path}: no [text, intent] items in {list(keys)}")
    return rows


def read_split(path: Path, fmt: str, part: str) -> list[tuple[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if fmt in CSV_COLUMNS:
        return read_csv(path, fmt)
    if part == "train":
        return read_clinc(path, ("train", "val", "oos_train", "oos_val"), required=("train",))
    return read_clinc(path, ("test", "oos_test"), required=("test",))


def make_split(source: Path, fmt: str, fraction: float, seed: int, out_dir: Path) -> tuple[Path, Path]:
    """Write a train/test pair in `fmt` derived from one training file into `out_dir`."""
    if not source.is_file():
        raise DataError(f"{source}: file not found")
    if fmt == "clinc150":
        train = read_clinc(source, ("train", "oos_train"), required=("train", "val"))
        test = read_clinc(source, ("val", "oos_val"), required=("val",))
        train_path, test_path = out_dir / "train.json", out_dir / "test.json"
        train_path.write_text(json.dumps({"train": train}))
        test_path.write_text(json.dumps({"test": test}))
        return train_path, test_path
    rows = read_csv(source, fmt)
    keep, held = stratified_split([label for _, label in rows], fraction, seed)
    paths = []
    for name, idx in (("train", keep), ("test", held)):
        path = out_dir / f"{name}.csv"
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS[fmt])
            writer.writerows(rows[i] for i in idx)
        paths.append(path)
    return paths[0], paths[1]


def evaluate(clf: IntentClassifier, test: list[tuple[str, str]], oos: str | None, latency_n: int, seed: int) -> dict:
    """Batch predictions for accuracy; one-at-a-time, uncached predictions for latency."""
    texts, gold = [t for t, _ in test], [label for _, label in test]
    with tqdm(total=len(texts), desc="embed test", file=sys.stderr) as bar:
        vecs = clf.embed(texts, progress=bar.update)
    preds = [p.intent for p in clf.predict(texts, vecs=vecs)]
    in_scope = [i for i, g in enumerate(gold) if g != oos]
    out_scope = [i for i, g in enumerate(gold) if g == oos]
    per_intent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    confusions: Counter[tuple[str, str]] = Counter()
    for g, p in zip(gold, preds, strict=True):
        per_intent[g][0] += int(g == p)
        per_intent[g][1] += 1
        if g != p:
            confusions[(g, p)] += 1

    sample = random.Random(seed).sample(texts, min(latency_n, len(texts)))
    # Steady state, as a service sees it after start-up: collect training garbage and warm the session first.
    gc.collect()
    for text in texts[:LATENCY_WARMUP]:
        clf.predict_one(text)
    latencies = []
    for text in tqdm(sample, desc="latency", file=sys.stderr):
        started = time.perf_counter()
        clf.predict_one(text)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "test_utterances": len(texts),
        "in_scope": len(in_scope),
        "out_of_scope": len(out_scope),
        "accuracy": sum(preds[i] == gold[i] for i in in_scope) / max(len(in_scope), 1),
        "oos_recall": (sum(preds[i] == oos for i in out_scope) / len(out_scope)) if out_scope else None,
        "oos_false_positive_rate": sum(preds[i] == clf.oos_label for i in in_scope) / max(len(in_scope), 1),
        "latency_sample": len(latencies),
        "latency_warmup": min(LATENCY_WARMUP, len(texts)),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "per_intent_accuracy": {k: v[0] / v[1] for k, v in sorted(per_intent.items())},
        "confusions_top": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(20)],
    }


def run(args: argparse.Namespace, train_path: Path, test_path: Path) -> dict:
    train, test = read_split(train_path, args.format, "train"), read_split(test_path, args.format, "test")
    labels = {label for _, label in train}
    oos = CLINC_OOS if args.format == "clinc150" and CLINC_OOS in labels else None
    print(f"train {len(train)} utterances, {len(labels)} intents; test {len(test)}", file=sys.stderr)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(args.cache)
    encoder = default_encoder(args.data_dir, args.max_seq_length)
    clf = IntentClassifier(
        encoder,
        threshold=args.threshold,
        lexical=not args.no_lexical,
        cache=cache,
        oos_recall_target=args.oos_recall_target,
        finetune_epochs=args.finetune_epochs,
        finetune_lr=args.finetune_lr,
        finetune_dir=args.finetune_dir,
        seed=args.seed,
    )
    started = time.perf_counter()
    with tqdm(total=len(train), desc="embed train", file=sys.stderr) as bar:
        fit = clf.fit([t for t, _ in train], [label for _, label in train], oos_label=oos, progress=bar.update)
    train_seconds = time.perf_counter() - started
    print(f"trained in {train_seconds:.1f}s ({fit.model_dump()})", file=sys.stderr)
    result = evaluate(clf, test, oos, args.latency_sample, args.seed)
    cache.close()
    if args.save:
        clf.save(args.save)
    result["train_seconds"] = train_seconds
    result["fit"] = fit.model_dump()
    result["config"] = {
        "format": args.format,
        "train": str(train_path),
        "test": str(test_path),
        "split_from": str(args.split_from) if args.split_from else None,
        "test_fraction": args.test_fraction if args.split_from else None,
        "seed": args.seed,
        "encoder": clf.encoder.model_id,
        "max_seq_length": args.max_seq_length,
        "layers": list(encoder.layers),
        "finetune_epochs": args.finetune_epochs,
        "finetune_lr": args.finetune_lr,
        "oos_recall_target": args.oos_recall_target,
        "lexical": not args.no_lexical,
        "c": clf.c,
        "threshold": clf.threshold,
        "oos_label": oos,
        "train_utterances": len(train),
        "intents": len(labels),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.intents", description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, help="training file")
    ap.add_argument("--test", type=Path, help="test file")
    ap.add_argument("--split-from", type=Path, help="derive train and test from this training file instead")
    ap.add_argument("--test-fraction", type=float, default=0.2, help="share held out per intent (CSV formats)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", required=True, choices=FORMATS)
    ap.add_argument("--json", type=Path, help="write the full report here")
    ap.add_argument("--threshold", type=float, default=None, help="fixed out-of-scope confidence threshold")
    ap.add_argument("--no-lexical", action="store_true", help="embedding head only (no TF-IDF n-gram model)")
    ap.add_argument("--max-seq-length", type=int, default=DEFAULT_MAX_SEQ_LENGTH)
    ap.add_argument("--oos-recall-target", type=float, default=0.7, help="held-out OOS recall the threshold must reach")
    ap.add_argument("--finetune-epochs", type=int, default=0, help="fine-tune the encoder first (0: frozen)")
    ap.add_argument("--finetune-lr", type=float, default=5e-5, help="encoder learning rate when fine-tuning")
    ap.add_argument("--finetune-dir", type=Path, default=DEFAULT_FINETUNE_DIR, help="where tuned encoders are kept")
    ap.add_argument("--latency-sample", type=int, default=500, help="utterances timed one at a time")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache shared across runs")
    ap.add_argument("--data-dir", type=Path, default=Path(".cache/shop"), help="where the ONNX model is cached")
    ap.add_argument("--save", type=Path, help="save the trained classifier here (keep it under .cache/)")
    args = ap.parse_args(argv)
    if args.split_from is None and (args.train is None or args.test is None):
        ap.error("give --train and --test, or --split-from")
    if not 0 < args.test_fraction < 0.5:
        ap.error("--test-fraction must be in (0, 0.5)")
    try:
        with tempfile.TemporaryDirectory(prefix="eval-intents-") as tmp:
            if args.split_from:
                split = make_split(args.split_from, args.format, args.test_fraction, args.seed, Path(tmp))
                train_path, test_path = split
            else:
                train_path, test_path = args.train, args.test
            result = run(args, train_path, test_path)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    oos_recall = "na" if result["oos_recall"] is None else f"{result['oos_recall']:.4f}"
    print(
        f"accuracy={result['accuracy']:.4f} oos_recall={oos_recall} "
        f"p50_ms={result['p50_ms']:.2f} p99_ms={result['p99_ms']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
