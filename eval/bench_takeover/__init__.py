"""Takeover delivery benchmark (issue 17): how long an agent's message takes to reach the shopper's open
session stream, posted on the stream's replica and on another replica sharing Redis or PostgreSQL.

`python -m eval.bench_takeover` starts a throwaway Redis (and PostgreSQL with `--backends redis,postgres`), two
real `serve` replicas over it on 127.0.0.1 with a stub OpenAI-compatible model server (agent messages never reach
a model), and measures; `--replica-a/--replica-b` point it at two running replicas instead.
"""
