"""Throwaway local servers for tests and benchmarks: Redis and PostgreSQL on 127.0.0.1 at a free port, each in its
own process group and temp dir, stopped by that group's id (SIGTERM — SIGINT for PostgreSQL's fast shutdown — then
SIGKILL after a grace period), the temp dir removed. Used by tests/integration/conftest.py and eval.bench_takeover.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
STORE_START_S = 60.0
# What a `serve` process reuses from a data dir that has run `serve` before (copied, since each process writes its own);
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


def wait_ready(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str, limit_s: float) -> None:
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
        raise RuntimeError("redis-server is not installed (scripts/services.sh install)")
    workdir = Path(tempfile.mkdtemp(prefix="shop-redis-"))
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
        wait_ready(ready, proc, log, "redis-server", STORE_START_S)
        yield url
    finally:
        stop_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def postgres_bindir() -> Path | None:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "postgres").is_file() and (d / "initdb").is_file()), None)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL (fsync off; as root it runs as the `postgres` account); yields its DSN."""
    import psycopg

    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL (initdb, postgres) is not installed (scripts/services.sh install)")
    account: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="shop-pg-"))
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
        wait_ready(ready, proc, log, "postgres", STORE_START_S)
        yield dsn
    finally:
        stop_group(proc, signal.SIGINT)  # postgres's fast shutdown
        shutil.rmtree(workdir, ignore_errors=True)


def seed_data_dir(seed: Path, target: Path) -> None:
    """Give a `serve` data dir what an earlier start built, so it starts in seconds (it builds what is missing)."""
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
