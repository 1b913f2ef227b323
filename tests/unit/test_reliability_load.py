"""eval.reliability's load part judges the service's memory flat from its samples: a plateau passes, a steady
climb after warm-up fails."""

from __future__ import annotations

from typing import Any

from eval.reliability.parts.load import RSS_GROWTH_MAX, judge_memory


def samples(rss_at: Any, soak_s: float = 600.0) -> list[dict[str, Any]]:
    return [{"t": float(t), "phase": "soak", "rss": int(rss_at(t)), "fds": 50} for t in range(0, int(soak_s) + 1, 2)]


def test_a_plateau_after_warm_up_is_flat() -> None:
    warm = samples(lambda t: 900e6 + min(t, 100) * 0.3e6)  # grows while warming up, then stays
    verdict = judge_memory(warm, 600)
    assert verdict["flat"] and abs(verdict["slope_mb_per_min"]) < 0.1


def test_a_steady_climb_after_warm_up_is_not_flat() -> None:
    per_s = 900e6 * (RSS_GROWTH_MAX * 1.5) / 420  # 1.5 times the allowed growth between the two windows
    leak = samples(lambda t: 900e6 + t * per_s)
    verdict = judge_memory(leak, 600)
    assert not verdict["flat"] and verdict["growth"] > RSS_GROWTH_MAX
