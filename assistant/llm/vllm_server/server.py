"""`VllmServer`: vLLM's OpenAI-compatible server as a child process group: start, wait for /health, restart,
stop, clean up."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from assistant.llm.smollm2 import SERVED_NAME
from assistant.llm.vllm_server.dtype import best_cpu_dtype
from assistant.llm.vllm_server.processes import (
    free_port,
    group_pids,
    log_tail,
    set_parent_death_signal,
    shm_segments,
)

logger = logging.getLogger(__name__)

_LIVE: set[VllmServer] = set()


class VllmStartError(RuntimeError):
    """The server process died or did not become healthy in time; the message carries its log tail."""


class VllmServer:
    """vLLM's OpenAI API server for `model_dir` on a loopback port, in its own process group."""

    def __init__(
        self,
        model_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        served_model_name: str = SERVED_NAME,
        max_model_len: int = 2048,
        kv_cache_gib: int = 1,
        dtype: str = "auto",
        extra_args: Sequence[str] = (),
        log_path: Path | str | None = None,
        startup_timeout: float = 240.0,
        stop_grace: float = 15.0,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        nice: int = 0,
    ) -> None:
        self.model_dir = Path(model_dir).resolve()
        self.nice = nice
        self.host = host
        self.requested_port = port
        self.port = port
        self.served_model_name = served_model_name
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.dtype = best_cpu_dtype() if dtype == "auto" else dtype
        self.extra_args = list(extra_args)
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.python = python
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_seconds: float | None = None
        self._tmpdir: Path | None = None
        self._shm: set[str] = set()
        self._t0 = 0.0

    # -- addresses -----------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (`.../v1`)."""
        return f"{self.root_url}/v1"

    @property
    def model(self) -> str:
        return self.served_model_name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--host", self.host, "--port", str(self.port),
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
            "--enforce-eager",
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            *self.extra_args,
        ]  # fmt: skip

    # -- start ---------------------------------------------------------------------------------

    def _spawn(self) -> None:
        if not (self.model_dir / "config.json").is_file():
            raise VllmStartError(f"{self.model_dir} holds no converted model (config.json missing)")
        if self.port == 0:
            self.port = free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="vllm-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A private TMPDIR so the vllm_dist_* files it leaves are ours to delete.
        self._tmpdir = Path(tempfile.mkdtemp(prefix="vllm-server-tmp-"))
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib),
            "TMPDIR": str(self._tmpdir),
            "PYTHONUNBUFFERED": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            **self.env,
        }
        preexec = set_parent_death_signal if threading.current_thread() is threading.main_thread() else None
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: stop() signals exactly what we started
                preexec_fn=preexec,  # noqa: PLW1509 - only prctl, before exec
            )
        _LIVE.add(self)
        self._t0 = time.perf_counter()
        if self.nice:
            self._lower_priority(self.proc.pid)

    def _lower_priority(self, pid: int) -> None:
        """Lower priority for the model server (its engine and worker processes inherit it): on shared cores,
        the assistant's short routing and search work then runs first. With the kernel's autogroup scheduling
        (sched_autogroup_enabled, common on desktops and VMs) niceness only ranks processes within one session,
        and the server runs in its own: its session's group gets the niceness too, or the two groups share the
        cores equally."""
        try:
            os.setpriority(os.PRIO_PROCESS, pid, self.nice)
        except OSError as e:
            logger.warning("could not renice vLLM (pid %s) to %s: %s", pid, self.nice, e)
        group = Path(f"/proc/{pid}/autogroup")
        if group.is_file():
            try:
                group.write_text(f"{self.nice}\n")
            except OSError as e:
                logger.warning("could not renice vLLM's autogroup (%s) to %s: %s", group, self.nice, e)

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self._cleanup_files()
            _LIVE.discard(self)
            raise VllmStartError(
                f"vLLM exited with code {code} before becoming healthy; log {self.log_path}:\n{log_tail(self._log())}"
            )

    def _log(self) -> Path:
        assert self.log_path is not None
        return self.log_path

    def _timed_out(self) -> None:
        tail = log_tail(self._log())
        self.stop()
        raise VllmStartError(
            f"vLLM was not healthy after {self.startup_timeout:.0f}s on {self.root_url}; log {self.log_path}:\n{tail}"
        )

    def _became_ready(self) -> None:
        self.ready_seconds = time.perf_counter() - self._t0
        self._remember_shm()

    def start(self) -> VllmServer:
        """Start and block until /health answers 200; VllmStartError (with the log tail) otherwise."""
        if self.running():
            return self
        self._spawn()
        deadline = time.monotonic() + self.startup_timeout
        try:
            with httpx.Client(timeout=2.0) as client:
                while time.monotonic() < deadline:
                    self._check_alive()
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(f"{self.root_url}/health").status_code == 200:
                            self._became_ready()
                            return self
                    time.sleep(0.25)
        except BaseException:  # Ctrl-C while waiting: leave no half-started server behind
            self.stop()
            raise
        self._timed_out()
        return self  # unreachable

    async def start_async(self) -> VllmServer:
        """`start()` without blocking the event loop."""
        if self.running():
            return self
        self._spawn()
        deadline = time.monotonic() + self.startup_timeout
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                while time.monotonic() < deadline:
                    self._check_alive()
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{self.root_url}/health")).status_code == 200:
                            self._became_ready()
                            return self
                    await asyncio.sleep(0.25)
        except BaseException:  # cancelled while waiting (app start aborted): stop what we started
            self.stop()
            raise
        await asyncio.to_thread(self._timed_out)
        return self  # unreachable

    # -- stop ----------------------------------------------------------------------------------

    def _remember_shm(self) -> None:
        if self.proc is not None:
            self._shm |= shm_segments(group_pids(self.proc.pid))

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after `stop_grace` s, then delete its temp files and shm segments."""
        proc = self.proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the leader's pid is the group id
        if proc.poll() is None:
            self._remember_shm()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Engine workers may outlive the API process for a moment; they are still in our group.
        deadline = time.monotonic() + self.stop_grace
        while group_pids(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_pids(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while group_pids(pgid) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.proc = None
        _LIVE.discard(self)
        self._cleanup_files()

    async def stop_async(self) -> None:
        await asyncio.to_thread(self.stop)

    def _cleanup_files(self) -> None:
        for name in self._shm:
            with contextlib.suppress(OSError):
                os.unlink(name)
        self._shm.clear()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def restart(self) -> VllmServer:
        """Stop and start again on the same port (clients keep their base_url)."""
        self.stop()
        return self.start()

    async def restart_async(self) -> VllmServer:
        await self.stop_async()
        return await self.start_async()

    # -- context managers ----------------------------------------------------------------------

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> VllmServer:
        return await self.start_async()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop_async()

    def __repr__(self) -> str:
        return f"VllmServer({self.model_dir}, url={self.root_url}, pid={self.pid})"


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()
