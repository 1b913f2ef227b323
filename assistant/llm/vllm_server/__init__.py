"""vLLM's OpenAI-compatible server as a child process of the assistant.

- `server`: `VllmServer`, the process group's lifecycle (start, wait for /health, restart, stop, clean up);
- `processes`: the Linux plumbing it uses (free port, parent-death signal, process groups, /dev/shm);
- `dtype`: bfloat16 or float32, by what the CPU computes natively;
- `cli`: `python -m assistant.llm.vllm_server [--convert-only | --serve]`.
"""

from assistant.llm.vllm_server.cli import main
from assistant.llm.vllm_server.dtype import best_cpu_dtype
from assistant.llm.vllm_server.processes import free_port, group_pids
from assistant.llm.vllm_server.server import VllmServer, VllmStartError

__all__ = ["VllmServer", "VllmStartError", "best_cpu_dtype", "free_port", "group_pids", "main"]
