"""`python -m eval.bench_takeover`."""

from eval.bench_takeover.cli import main

raise SystemExit(main())
