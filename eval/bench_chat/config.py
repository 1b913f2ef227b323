"""A run's settings, and its progress log."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Config:
    base_url: str
    api_key: str
    vllm_url: str | None
    vllm_log: Path | None  # --vllm-url auto: read the address here once the service is ready
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


def discover_vllm_url(logfile: Path) -> str | None:
    """The newest "Starting vLLM server on http://…" in the embedded server's log, as an OpenAI base URL."""
    if not logfile.is_file():
        return None
    found = re.findall(r"Starting vLLM (?:API )?server on (http://\S+)", logfile.read_text(errors="replace"))
    return openai_base(found[-1]) if found else None


def openai_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"
