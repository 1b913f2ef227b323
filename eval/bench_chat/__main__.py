"""`python -m eval.bench_chat`."""

from eval.bench_chat.cli import main

raise SystemExit(main())
