"""The processes under test: the stub model server and `serve`, each its own process group on 127.0.0.1, so the
suite can kill -9, stop (SIGSTOP) and restart them. Only processes started here are ever signalled, by group id.

Keys: the suite configures its own (SHOP_API_KEYS, demo keys off): widget keys for shoppers A and B, an agent
key, and a publishable key whose visitor tokens the suite gets with the store's signature of a shopper id.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from assistant.visitors import sign_shopper_id
from eval.local_servers import HOST, free_port, seed_data_dir, stop_group, wait_ready

WIDGET_A, SHOPPER_A = "rel-widget-a", "1"
WIDGET_B, SHOPPER_B = "rel-widget-b", "2"
AGENT = "rel-agent"
PUBLISHABLE = "pk_rel"
IDENTITY_SECRET = "rel-identity-secret"
PAGE_ORIGIN = "http://127.0.0.1:9"  # the store page the publishable key is allowed on (nothing listens there)

KEYS: dict[str, dict[str, Any]] = {
    WIDGET_A: {"role": "widget", "shopper_id": SHOPPER_A},
    WIDGET_B: {"role": "widget", "shopper_id": SHOPPER_B},
    AGENT: {"role": "agent"},
    PUBLISHABLE: {"role": "publishable", "allowed_origins": [PAGE_ORIGIN], "identity_secret": IDENTITY_SECRET},
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class StubModel:
    """`python -m eval.stub_llm` as its own process (so it can be killed or stopped mid-stream)."""

    def __init__(self, workdir: Path, chunks: int = 8, chunk_delay_ms: float = 30.0) -> None:
        self.port = free_port()
        self.log = workdir / f"stub-llm-{self.port}.log"
        self.args = ["--chunks", str(chunks), "--chunk-delay-ms", str(chunk_delay_ms)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "eval.stub_llm", "--host", HOST, "--port", str(self.port), *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            try:
                return httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert self.proc is not None
        wait_ready(ready, self.proc, self.log, "stub model server", 30)

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            self.signal(signal.SIGCONT)
            stop_group(self.proc)

    def restart(self) -> None:
        """Start it again on the same port (after kill9 or stop), as a supervisor would."""
        self.stop()
        self.start()


@dataclass
class Service:
    """One `serve` process over `data_dir`; restartable on the same port and data (what a supervisor does)."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"serve-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_s: float = 600.0) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n== start {self.starts}\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "assistant.api.cli", "serve", "--host", HOST, "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        wait_ready(self.ready, self.proc, self.log, f"serve on port {self.port}", ready_s)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    def rss_bytes(self) -> int:
        """Resident memory of the service's process (not its children)."""
        import psutil

        return int(psutil.Process(self.pid).memory_info().rss)

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def service_env(data_dir: Path, llm_url: str, **overrides: str) -> dict[str, str]:
    """The service's environment: the suite's keys, the stub (or given) model server, SQLite in `data_dir`."""
    env = {
        **os.environ,
        "SHOP_DATA_DIR": str(data_dir),
        "SHOP_API_KEYS": json.dumps(KEYS),
        "SHOP_DEMO_KEYS": "false",
        "SHOP_VISITOR_SECRET": secrets.token_hex(32),
        "SHOP_LLM_MODE": "external",
        "SHOP_LLM_BASE_URL": llm_url,
        "SHOP_LLM_MODEL": "stub",
        "SHOP_MODEL_PARSE": "off",
        "SHOP_LLM_SLOTS": "false",
        "SHOP_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    env.update(overrides)
    return env


# What a `serve` start over an external model builds (and a later start reuses); policies are indexed on first use.
SEED_BUILT = ("chroma", "lexical", "router", "embedding-cache.sqlite")


def ensure_seed(seed: Path, llm_url: str, workdir: Path) -> None:
    """Build the index and router once into `seed` (a `serve` start over it), so every service starts in seconds."""
    if all((seed / name).exists() for name in SEED_BUILT):
        return
    print(f"[reliability] building the index and router into {seed} (first run only; minutes)", file=sys.stderr)
    seed.mkdir(parents=True, exist_ok=True)
    svc = Service(seed, service_env(seed, llm_url))
    svc.data_dir = seed
    try:
        svc.start()
    finally:
        svc.stop()
        shutil.move(str(svc.log), str(workdir / "seed-serve.log"))


@contextmanager
def service(workdir: Path, seed: Path, llm_url: str, name: str, **overrides: str) -> Iterator[Service]:
    """A started Service with its own data dir (seeded), stopped on exit; `overrides` are SHOP_* env values."""
    data_dir = workdir / name / "data"
    seed_data_dir(seed, data_dir)
    with running(Service(data_dir, service_env(data_dir, llm_url, **overrides)), name) as svc:
        yield svc


@contextmanager
def running(svc: Service, name: str) -> Iterator[Service]:
    """`svc` started (its start time reported under `name`), stopped on exit."""
    try:
        t0 = time.monotonic()
        svc.start()
        print(f"[reliability] {name}: serve pid {svc.pid} ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        yield svc
    finally:
        svc.stop()


def visitor_token(base_url: str, shopper_id: str | None = None) -> str:
    """A visitor token from the publishable key: for `shopper_id` signed as the store would, else anonymous."""
    body: dict[str, Any] = {}
    if shopper_id is not None:
        body = {"shopper_id": shopper_id, "shopper_signature": sign_shopper_id(IDENTITY_SECRET, shopper_id)}
    resp = httpx.post(
        f"{base_url}/v1/visitors", json=body, headers={"X-Widget-Key": PUBLISHABLE, "Origin": PAGE_ORIGIN}, timeout=10
    )
    resp.raise_for_status()
    return str(resp.json()["token"])
