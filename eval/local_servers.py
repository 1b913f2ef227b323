"""Throwaway local servers for tests and benchmarks: Redis and PostgreSQL on 127.0.0.1 at a free port, each in its
own process group and temp dir, stopped by that group's id (SIGTERM — SIGINT for PostgreSQL's fast shutdown — then
SIGKILL after a grace period), the temp dir removed. Used by tests/integration/conftest.py and eval.bench_takeover.

`RedisServer`, `PostgresServer` and `ChromaServer` are the restartable forms (eval.reliability's stores part stops,
pauses and kills them under traffic, then starts them again on the same port and data).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

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


class LocalServer:
    """A server process in its own process group over a data dir that outlives it: started, stopped cleanly, killed
    (-9), paused (SIGSTOP: a "hung" server that still accepts connections) and resumed, and started again on the same
    port and data (what a supervisor does). `close()` stops it and removes its temp dir."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"shop-{self.name}-"))
        self.port = free_port()
        self.log = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # --- what each server defines

    def command(self) -> list[str | Path]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        return {}

    # --- lifecycle

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, limit_s: float = STORE_START_S) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} on port {self.port} is already running")
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n== start {self.starts}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self.popen_options(),
            )
        wait_ready(self.ready, self.proc, self.log, f"{self.name} on port {self.port}", limit_s)

    def _signal(self, sig: signal.Signals) -> None:
        """The server's process group, and every process it started in a session of its own (PostgreSQL's backends
        call setsid: stopping the postmaster alone leaves open connections answering)."""
        if not self.running:
            return
        assert self.proc is not None
        import psutil

        try:
            others = [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            others = []
        os.killpg(self.proc.pid, sig)
        for pid in others:
            try:
                if os.getpgid(pid) != self.proc.pid:
                    os.kill(pid, sig)
            except ProcessLookupError:
                continue

    def pause(self) -> None:
        """SIGSTOP the server's group: connections stay open (and new ones are accepted by the kernel), nothing
        answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        """A clean shutdown (resumed first: a stopped process cannot act on the signal), SIGKILL if it lingers."""
        if self.proc is not None:
            self.resume()
            stop_group(self.proc, self.stop_signal)

    def kill(self) -> None:
        """kill -9 the server's group: no shutdown work, what it had not written is lost."""
        if self.running:
            assert self.proc is not None
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisServer(LocalServer):
    """redis-server on loopback; `appendonly`: every write logged to disk (`appendfsync always`: before it is
    acknowledged), so a restart, even after kill -9, keeps what clients were told is stored. Without it (the default,
    a cache's configuration) a restart starts empty."""

    name = "redis"

    def __init__(self, appendonly: bool = False) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (scripts/services.sh install)")
        super().__init__()
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def command(self) -> list[str | Path]:
        assert self.binary is not None
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        port = ["--port", str(self.port), "--bind", HOST]
        return [self.binary, *port, "--save", "", *persistence, "--dir", self.workdir]

    def ready(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1).ping())
        except redis.RedisError:
            return False


class PostgresServer(LocalServer):
    """A throwaway PostgreSQL cluster (initdb once, fsync off; as root it runs as the `postgres` account)."""

    name = "pg"
    stop_signal = signal.SIGINT  # postgres's fast shutdown

    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL (initdb, postgres) is not installed (scripts/services.sh install)")
        super().__init__()
        self.bindir = bindir
        self.account: dict[str, Any] = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.account = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        self.data = self.workdir / "data"

    @property
    def dsn(self) -> str:
        return f"postgresql://shop@{HOST}:{self.port}/postgres"

    url = dsn

    def start(self, limit_s: float = STORE_START_S) -> None:
        if not self.data.exists():
            subprocess.run(
                [self.bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "shop", "-E", "UTF8", "--no-sync"],
                check=True,
                capture_output=True,
                **self.account,
            )
        super().start(limit_s)

    def command(self) -> list[str | Path]:
        return [
            self.bindir / "postgres", "-D", self.data, "-p", str(self.port), "-h", HOST, "-k", self.workdir,
            "-c", "fsync=off",
        ]  # fmt: skip

    def popen_options(self) -> dict[str, Any]:
        return self.account

    def ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn, connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False


class ChromaServer(LocalServer):
    """`chroma run` on loopback over `path` (default: a dir of its own; a copy of an embedded Chroma dir works)."""

    name = "chroma"

    def __init__(self, path: Path | None = None) -> None:
        super().__init__()
        self.path = path or self.workdir / "data"
        beside_python = Path(sys.executable).parent / "chroma"
        found = str(beside_python) if beside_python.is_file() else shutil.which("chroma")
        if found is None:
            raise RuntimeError("the `chroma` console script is not installed (the chromadb package)")
        self.binary = found

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str | Path]:
        return [self.binary, "run", "--path", self.path, "--host", HOST, "--port", str(self.port)]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, ValueError):
            return False


@contextmanager
def redis_server(appendonly: bool = False) -> Iterator[str]:
    """A throwaway redis-server; yields its URL."""
    with RedisServer(appendonly) as server:
        yield server.url


def postgres_bindir() -> Path | None:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "postgres").is_file() and (d / "initdb").is_file()), None)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL (fsync off; as root it runs as the `postgres` account); yields its DSN."""
    with PostgresServer() as server:
        yield server.dsn


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
