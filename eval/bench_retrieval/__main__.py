"""`python -m eval.bench_retrieval`."""

from eval.bench_retrieval.cli import main

raise SystemExit(main())
