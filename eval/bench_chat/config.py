"""A run's settings, and its progress log."""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class Config:
    base_url: str
    api_key: str
    vllm_url: str | None
    vllm_model: str | None
    levels: list[int]
    turns: int
    rounds: int
    request_timeout: float
    deadline: float  # time.monotonic()
    warmup: bool
    quiet: bool = False


def log(cfg: Config, text: str) -> None:
    if not cfg.quiet:
        print(text, file=sys.stderr, flush=True)
