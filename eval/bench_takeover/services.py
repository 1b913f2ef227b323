"""What the benchmark starts and stops: a throwaway Redis or PostgreSQL, and `serve` replicas over it.

Everything listens on 127.0.0.1 at a free port, runs in its own process group, and is stopped by that group's id
(SIGTERM, then SIGKILL after a grace period); temp dirs are removed. Nothing the benchmark did not start is touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from eval.local_servers import HOST, free_port, seed_data_dir, stop_group, wait_ready


@dataclass
class Replica:
    name: str
    base_url: str
    pid: int
    log: Path


@contextmanager
def replicas(
    store_url: str, llm_url: str, seed: Path, names: tuple[str, ...] = ("a", "b"), start_s: float = 300.0
) -> Iterator[list[Replica]]:
    """`python -m assistant.api.cli serve` per name, each with its own data dir, all sharing `store_url`, one
    visitor secret and the (stub) model server; started together, yielded once every one answers /readyz."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    secret = secrets.token_hex(32)
    started: list[tuple[Replica, subprocess.Popen[bytes]]] = []
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        for name in names:
            data_dir, port = workdir / name, free_port()
            seed_data_dir(seed, data_dir)
            env = {
                **os.environ,
                "SHOP_DATA_DIR": str(data_dir),
                "SHOP_SESSION_STORE_URL": store_url,
                "SHOP_VISITOR_SECRET": secret,
                "SHOP_LLM_MODE": "external",
                "SHOP_LLM_BASE_URL": llm_url,
                "SHOP_LLM_MODEL": "stub",
                "SHOP_MODEL_PARSE": "off",
                "SHOP_LLM_SLOTS": "false",
                "SHOP_RATE_LIMIT_PER_MINUTE": "1000000",
            }
            log = workdir / f"{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "assistant.api.cli", "serve", "--host", HOST, "--port", str(port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            stack.callback(stop_group, proc)
            started.append((Replica(name, f"http://{HOST}:{port}", proc.pid, log), proc))
        for replica, proc in started:

            def ready(url: str = replica.base_url) -> bool:
                try:
                    return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_ready(ready, proc, replica.log, f"replica {replica.name}", start_s)
        yield [r for r, _ in started]
