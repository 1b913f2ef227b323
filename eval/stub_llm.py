"""A stub OpenAI-compatible model server: for benchmarks and the reliability suite, where the service's own work
is measured and the model only needs to answer. Stdlib only.

In a daemon thread (`with StubLLM() as stub:`), or as its own process, which the reliability suite kills and stops
to play a model server failing mid-stream:

    python -m eval.stub_llm --port 8001 [--chunks 8] [--chunk-delay-ms 50] [--mode answer|attacker]

Streamed answers come as `--chunks` pieces of ANSWER (CONTINUATION when the service primes the answer),
`--chunk-delay-ms` apart; JSON-mode requests (the service's parse and slot calls, `response_format` set) get
`{}`, which the service reads as "nothing parsed". `--mode attacker` is a model that obeys every injection it reads
(eval/reliability/attacker.py): its answers state the attack's payload and its JSON is the most harmful the schema
allows, so the reliability suite's injection part tests the service's defences, not the model's manners.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "stub"
ANSWER = "Here is what I found."
# When the service primes the answer (an assistant message continued, vLLM's continue_final_message).
CONTINUATION = " products above are the closest matches I found."


MODES = ("answer", "attacker")


def answer_for(body: dict[str, Any], mode: str = "answer") -> str:
    if mode == "attacker":
        from eval.reliability.attacker import attack_answer

        return attack_answer(body)
    messages = body.get("messages") or [{}]
    primed = body.get("continue_final_message") and isinstance(messages[-1], dict)
    return CONTINUATION if primed and messages[-1].get("role") == "assistant" else ANSWER


def pieces(text: str, n: int) -> list[str]:
    """`text` cut into at most n consecutive pieces (word boundaries kept with their spaces)."""
    words = text.split(" ")
    n = max(1, min(n, len(words)))
    size = -(-len(words) // n)
    out = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(out)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    chunks = 1
    chunk_delay_s = 0.0
    mode = "answer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None

    def _json(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "stub"}]})
        elif self.path.startswith("/health"):
            self._json(200, {})
        elif self.path.startswith("/metrics"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(404, {"error": {"message": "not found"}})

    def _content(self, body: dict[str, Any]) -> str:
        """A non-streamed answer's content: `{}` (or, attacking, the worst object the schema allows) in JSON mode."""
        if not body.get("response_format"):
            return answer_for(body, self.mode)
        if self.mode == "attacker":
            from eval.reliability.attacker import attack_json

            return attack_json(body)
        return "{}"

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        created = int(time.time())
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": self._content(body)}
            self._json(
                200,
                {
                    "id": "stub-1",
                    "object": "chat.completion",
                    "created": created,
                    "model": MODEL,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        deltas: list[tuple[dict[str, Any], str | None]] = [
            ({"role": "assistant", "content": p} if i == 0 else {"content": p}, None)
            for i, p in enumerate(pieces(answer_for(body, self.mode), self.chunks))
        ]
        for i, (delta, finish) in enumerate([*deltas, ({}, "stop")]):
            if i and self.chunk_delay_s:
                time.sleep(self.chunk_delay_s)
            chunk = {
                "id": "stub-1",
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def _server(host: str, port: int, chunks: int, chunk_delay_s: float, mode: str = "answer") -> ThreadingHTTPServer:
    if mode not in MODES:
        raise ValueError(f"mode: one of {', '.join(MODES)}, got {mode!r}")
    handler = type("Handler", (_Handler,), {"chunks": chunks, "chunk_delay_s": chunk_delay_s, "mode": mode})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


class StubLLM:
    """`with StubLLM() as stub:` serves on 127.0.0.1 at a free port; `stub.base_url` ends in /v1."""

    def __init__(
        self, host: str = "127.0.0.1", chunks: int = 1, chunk_delay_s: float = 0.0, mode: str = "answer"
    ) -> None:
        self._host = host
        self._server = _server(host, 0, chunks, chunk_delay_s, mode)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}/v1"

    def __enter__(self) -> StubLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.stub_llm", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chunks", type=int, default=1, help="pieces a streamed answer comes in")
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between streamed pieces")
    ap.add_argument("--mode", choices=MODES, default="answer", help="attacker: obey every injection (see above)")
    args = ap.parse_args(argv)
    server = _server(args.host, args.port, max(1, args.chunks), max(0.0, args.chunk_delay_ms) / 1000, args.mode)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
