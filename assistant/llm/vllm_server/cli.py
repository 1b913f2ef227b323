"""`python -m assistant.llm.vllm_server`: convert SmolLM2 and/or serve it until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from assistant.llm.vllm_server.server import VllmServer, VllmStartError


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m assistant.llm.vllm_server [--convert-only | --serve]`: convert SmolLM2 and/or serve it."""
    from assistant.llm.smollm2 import ModelNotAvailable, ensure_converted

    parser = argparse.ArgumentParser(prog="python -m assistant.llm.vllm_server", description=main.__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--convert-only", action="store_true", help="convert the GGUF to bf16 safetensors and exit")
    mode.add_argument("--serve", action="store_true", help="convert if needed, then serve until Ctrl-C (default)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("SHOP_DATA_DIR", ".cache/shop")))
    parser.add_argument("--force", action="store_true", help="convert again even if a conversion is cached")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--kv-cache-gib", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="server log file (default: a temp file)")
    args, extra = parser.parse_known_args(argv)

    try:
        model_dir = ensure_converted(data_dir=args.data_dir, force=args.force)
    except ModelNotAvailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"model ready in {model_dir}", file=sys.stderr)
    if args.convert_only:
        return 0

    server = VllmServer(
        model_dir,
        host=args.host,
        port=args.port,
        max_model_len=args.max_model_len,
        kv_cache_gib=args.kv_cache_gib,
        extra_args=extra,
        log_path=args.log,
    )
    print(f"starting vLLM (log: {server.log_path or 'temp file'}) ...", file=sys.stderr)
    try:
        with server:
            print(
                f"ready in {server.ready_seconds:.1f}s: {server.base_url} model={server.model} log={server.log_path}",
                file=sys.stderr,
            )
            # Blocked only now: the child must not inherit a mask that hides SIGTERM from it.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except VllmStartError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
