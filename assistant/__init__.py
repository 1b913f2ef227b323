"""The assistant service: dialogue, intents, tools, LLM client and HTTP API (built on retrieval/)."""
