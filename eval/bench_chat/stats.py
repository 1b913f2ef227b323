"""Statistics over the turns: distributions, the first-token breakdown, the service/direct overhead."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from eval.bench_chat.client import WORD, TurnResult
from eval.metrics import percentile


def dist(values: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "mean": sum(values) / len(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


def side_stats(results: Sequence[TurnResult], wall_s: float) -> dict[str, Any]:
    """Distributions over the turns that ran (cut ones left out); latencies wherever they were measured."""
    ran = [r for r in results if not r.cut]
    kinds: Counter[str] = Counter()
    for r in ran:
        if r.error:
            kinds[re.sub(r"\d+(\.\d+)? s$", "N s", r.error.split(":")[0])] += 1
        for e in r.error_events:
            kinds["error event " + e.split(":")[0]] += 1
        if r.error is None and not r.error_events and r.status != "completed":
            kinds[f"done {r.status}"] += 1
    rates = [r.rates() for r in ran]
    pieces = sum(r.pieces for r in ran)
    return {
        "turns": len(ran),
        "cut": len(results) - len(ran),
        "errors": sum(r.failed for r in ran),
        "error_kinds": dict(kinds),
        "products_s": dist([r.products_s for r in ran if r.products_s is not None]),
        "first_token_s": dist([r.first_token_s for r in ran if r.first_token_s is not None]),
        "duration_s": dist([r.duration_s for r in ran if r.duration_s is not None and not r.failed]),
        "pieces_per_s": dist([p for p, _ in rates if p is not None]),
        "words_per_s": dist([w for _, w in rates if w is not None]),
        "pieces_per_turn": pieces / len(ran) if ran else float("nan"),
        "wall_s": wall_s,
        "pieces_per_s_total": pieces / wall_s if wall_s > 0 else float("nan"),
    }


def breakdown(service: Sequence[TurnResult]) -> dict[str, Any]:
    """Where a service turn's first-token time went, in ms, from the timings its trace recorded: before the
    model request (routing, search, storing events), the model's first text, the filters' hold."""
    before, model, hold = [], [], []
    for r in service:
        call = r.model_call or {}
        text_ms, piece_ms = call.get("first_text_ms"), call.get("first_piece_ms")
        if r.failed or r.first_token_s is None or text_ms is None or piece_ms is None:
            continue
        before.append(r.first_token_s * 1000 - piece_ms)
        model.append(text_ms)
        hold.append(piece_ms - text_ms)
    return {"before_model_ms": dist(before), "model_first_text_ms": dist(model), "filter_hold_ms": dist(hold)}


def word_overlap(service_text: str, direct_text: str) -> float | None:
    """Share of the service answer's words found in the direct answer: both sides saw the same prompt when
    this is near 1 (temperature 0; the service may cut or repair a sentence, never add model text)."""
    said = [w.lower().strip(".,!?;:\"'()") for w in WORD.findall(service_text)]
    said = [w for w in said if w]
    if not said:
        return None
    direct = {w.lower().strip(".,!?;:\"'()") for w in WORD.findall(direct_text)}
    return sum(w in direct for w in said) / len(said)


def overhead(service: Sequence[TurnResult], direct: Sequence[TurnResult]) -> dict[str, Any]:
    """Service / direct over the turns both sides answered (same round, shopper and turn)."""
    by_key = {(r.round, r.shopper, r.turn): r for r in service}
    pairs = [
        (by_key[(d.round, d.shopper, d.turn)], d)
        for d in direct
        if not d.cut and not d.failed and d.first_token_s is not None and (d.round, d.shopper, d.turn) in by_key
    ]
    s_ft = [s.first_token_s for s, _ in pairs if s.first_token_s is not None]
    d_ft = [d.first_token_s for _, d in pairs if d.first_token_s is not None]
    s_end = [s.duration_s for s, _ in pairs if s.duration_s is not None]
    d_end = [d.duration_s for _, d in pairs if d.duration_s is not None]

    overlaps = [o for s, d in pairs if (o := word_overlap(s.text, d.text)) is not None]

    def ratio(a: Sequence[float], b: Sequence[float], stat: str) -> float:
        da, db = dist(a), dist(b)
        return da[stat] / db[stat] if db["n"] and da["n"] and db[stat] > 0 else float("nan")

    return {
        "paired_turns": len(pairs),
        "service_first_token_p50_s": percentile(s_ft, 50),
        "direct_first_token_p50_s": percentile(d_ft, 50),
        "first_token_p50_ratio": ratio(s_ft, d_ft, "p50"),
        "first_token_mean_ratio": ratio(s_ft, d_ft, "mean"),
        "duration_p50_ratio": ratio(s_end, d_end, "p50"),
        "answer_word_overlap_mean": sum(overlaps) / len(overlaps) if overlaps else float("nan"),
    }
