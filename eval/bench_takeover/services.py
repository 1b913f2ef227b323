"""What the benchmark starts and stops: a throwaway Redis or PostgreSQL, and `serve` replicas over it.

Everything listens on 127.0.0.1 at a free port, runs in its own process group, and is stopped by that group's id
(SIGTERM, then SIGKILL after a grace period); temp dirs are removed. Nothing the benchmark did not start is touched.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
STORE_START_S = 60.0
# What a replica reuses from a data dir that has run `serve` before (copied, since each replica writes its own);
# without them it builds them, which takes minutes. Converted models are only read: linked.
SEED_COPIES = ("chroma", "lexical", "embedding-cache.sqlite", "router", "policies")
SEED_LINKS = ("models",)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM) -> None:
    """Signal the process group this benchmark started (start_new_session), then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((first, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {limit_s:.0f} s:\n{log.read_text(errors='replace')[-2000:]}")


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server; yields its URL."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (scripts/services.sh install), or pass --redis-url")
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    port, log = free_port(), workdir / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"redis://{HOST}:{port}/0"

    def ready() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    try:
        _wait(ready, proc, log, "redis-server", STORE_START_S)
        yield url
    finally:
        stop_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_bindir() -> Path | None:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "postgres").is_file() and (d / "initdb").is_file()), None)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL (fsync off; as root it runs as the `postgres` account); yields its DSN."""
    import psycopg

    bindir = _postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL (initdb, postgres) is not installed (scripts/services.sh install)")
    account: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        account = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
    data, log, port = workdir / "data", workdir / "postgres.log", free_port()
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-A", "trust", "-U", "shop", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            **account,
        )
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [bindir / "postgres", "-D", data, "-p", str(port), "-h", HOST, "-k", workdir, "-c", "fsync=off"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **account,
            )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    dsn = f"postgresql://shop@{HOST}:{port}/postgres"

    def ready() -> bool:
        try:
            with psycopg.connect(dsn, connect_timeout=1) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    try:
        _wait(ready, proc, log, "postgres", STORE_START_S)
        yield dsn
    finally:
        stop_group(proc, signal.SIGINT)  # postgres's fast shutdown
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Replica:
    name: str
    base_url: str
    pid: int
    log: Path


def seed_data_dir(seed: Path, target: Path) -> None:
    """Give a replica what an earlier start built, so it starts in seconds (missing pieces it builds itself)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in SEED_COPIES:
        src = seed / name
        if src.is_dir():
            shutil.copytree(src, target / name)
        elif src.is_file():
            shutil.copy2(src, target / name)
    for name in SEED_LINKS:
        if (seed / name).exists():
            (target / name).symlink_to((seed / name).resolve())


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

            _wait(ready, proc, replica.log, f"replica {replica.name}", start_s)
        yield [r for r, _ in started]
