"""One replica as its own process, for the tests that kill it: the real app over the test fakes (tests/api/conftest.py)
on a loopback port, its sessions and live delivery behind a shared Redis or PostgreSQL URL.

python -m tests.integration.replica_server --url redis://… --data-dir DIR --port N [--first 5] [--then 60]
The model answers the first turn with `--first` words, every later one with `--then`, a word every `--chunk-delay`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from assistant.api.app import create_app
from assistant.llm.fake import FakeLLM
from tests.api.conftest import build_services


def words(n: int) -> list[str]:
    """Digit-free words in sentences of twenty (the answer's check lets a sentence out once it ends)."""
    return [f" w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{'.' if i % 20 == 19 else ''}" for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--first", type=int, default=5)
    ap.add_argument("--then", type=int, default=60)
    ap.add_argument("--chunk-delay", type=float, default=0.05)
    ap.add_argument("--lease-s", type=float, default=1.5)
    args = ap.parse_args()
    llm = FakeLLM(streams=[words(args.first)], default_stream=words(args.then), chunk_delay=args.chunk_delay)
    services, _ = build_services(
        args.data_dir, llm, shared_live=True, session_store_url=args.url, turn_lease_s=args.lease_s
    )
    uvicorn.run(create_app(services=services), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
