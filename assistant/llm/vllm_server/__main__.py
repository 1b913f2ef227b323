"""`python -m assistant.llm.vllm_server`."""

from assistant.llm.vllm_server.cli import main

raise SystemExit(main())
