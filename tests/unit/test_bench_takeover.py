"""The takeover benchmark's pure parts: backend parsing, the per-path figures and the summary line (no servers)."""

from __future__ import annotations

import argparse
import math

import pytest

from eval.bench_takeover.cli import parse_backends
from eval.bench_takeover.measure import Sample
from eval.bench_takeover.report import meets_target, summarize, summary_line


def test_backends_parse_as_a_subset_in_order() -> None:
    assert parse_backends("redis") == ["redis"]
    assert parse_backends("postgres, redis") == ["postgres", "redis"]
    for bad in ("", "sqlite", "redis,redis"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_backends(bad)


def sample(i: int, path: str, latency_ms: float | None, error: str | None = None) -> Sample:
    s = Sample(i, path, sent=10.0, posted=10.005, error=error)
    s.received = None if latency_ms is None else 10.0 + latency_ms / 1000
    return s


def test_figures_per_path_count_lost_and_failed_posts_apart() -> None:
    samples = [sample(i, "same", float(i + 1)) for i in range(20)]
    samples += [sample(i, "across", 50.0) for i in range(9)]
    samples += [sample(9, "across", None), sample(10, "across", None, error="POST answered 409")]
    stats = summarize(samples)
    same, across = stats["same"], stats["across"]
    assert same["latency_ms"]["n"] == 20 and same["lost"] == 0 and same["post_errors"] == 0
    assert same["latency_ms"]["p50"] == pytest.approx(10.5)
    assert same["latency_ms"]["max"] == pytest.approx(20.0)
    assert across["sent"] == 11 and across["lost"] == 1 and across["post_errors"] == 1
    assert across["latency_ms"]["p95"] == pytest.approx(50.0)
    assert across["post_ms"]["p50"] == pytest.approx(5.0)
    assert meets_target(stats) is True
    line = summary_line({"redis": stats})
    assert line.startswith("redis_same_p50_ms=10.5 redis_same_p95_ms=19.1 redis_across_p50_ms=50.0")
    assert line.endswith("lost=1 errors=1")


def test_no_deliveries_give_nan_and_no_verdict() -> None:
    stats = summarize([sample(0, "across", None)])
    assert math.isnan(stats["across"]["latency_ms"]["p95"]) and meets_target(stats) is None
    assert "redis_across_p95_ms=nan" in summary_line({"redis": stats})
