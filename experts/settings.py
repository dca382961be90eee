"""Settings for the whole service, read from `SME_*` environment variables and `.env`.

Nested fields use `__`: `SME_LOCAL__THREADS=2`, `SME_MATH__CHAIN='[{"model": "openai/gpt-4o-mini",
"api_key_env": "OPENAI_API_KEY"}]'`, `SME_HTTP__TOKEN=...`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Domain = Literal["math", "code", "general"]
Role = Literal["router", "math", "code", "general"]
DOMAINS: tuple[Domain, ...] = ("math", "code", "general")
ROLES: tuple[Role, ...] = ("router", "math", "code", "general")

LOCAL = "local"
REPO_DIR = Path(__file__).resolve().parents[1]


class LMSpec(BaseModel):
    """One LM backend. `model="local"` is the llama-server this process supervises."""

    model: str = LOCAL
    api_base: str | None = None
    api_key_env: str | None = Field(default=None, description="Name of the env var that holds the API key")
    temperature: float = 0.0
    max_tokens: int = 1024

    @property
    def label(self) -> str:
        return self.model if self.api_base is None else f"{self.model}@{self.api_base}"


def _default_chain() -> list[LMSpec]:
    return [LMSpec(), LMSpec(model="openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY")]


class RoleSettings(BaseModel):
    """Ordered fallback chain for one role: the first backend that answers serves the call."""

    chain: list[LMSpec] = Field(default_factory=_default_chain)


class LocalServerSettings(BaseModel):
    """The llama-server child process (llama.cpp's, or bitnet.cpp's build for BitNet models)."""

    enabled: bool = True
    binary: Path | None = Field(default=None, description="llama-server path; default: the embedded build")
    model_path: Path | None = Field(default=None, description="GGUF file; default: the embedded model")
    # One core is left for this process and its SymPy workers: on 2 cores, -t 2 collapsed from ~26 to
    # ~3 tokens/s whenever anything else ran, while -t 1 keeps ~12 (bench/concurrency.py measures it).
    threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    ctx_size: int = 8192
    parallel: int = 1
    chat_template: str | None = None
    extra_args: list[str] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout: float = 300.0
    max_restarts: int = 5


class HttpSettings(BaseModel):
    """Streamable HTTP and SSE transports."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = Field(default=None, description="Bearer token required on every request")
    allowed_hosts: list[str] = Field(default_factory=list, description="Extra Host header values to accept")


class MLflowSettings(BaseModel):
    enabled: bool = False
    tracking_uri: str | None = Field(default=None, description="Default: sqlite file in the data dir")
    experiment: str = "sme-mcp"


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback) / "sme-mcp"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SME_", env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share"))
    cache_dir: Path = Field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache"))
    router: RoleSettings = Field(default_factory=RoleSettings)
    math: RoleSettings = Field(default_factory=RoleSettings)
    code: RoleSettings = Field(default_factory=RoleSettings)
    general: RoleSettings = Field(default_factory=RoleSettings)
    local: LocalServerSettings = Field(default_factory=LocalServerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    mlflow: MLflowSettings = Field(default_factory=MLflowSettings)
    sympy_workers: int = 2
    sympy_timeout: float = 10.0
    sympy_memory_mb: int = 1024
    max_question_chars: int = 8000
    react_max_iters: int = 5
    retrieval_k: int = Field(default=3, ge=0, description="Passages the general expert retrieves; 0: closed-book")
    retrieval_min_similarity: float = Field(
        # From bench/results/retrieval_gate.json: at 0.35 the top passage of 94.5% of SQuAD questions is kept
        # while 70.5% of NQ-open questions (which the demo corpus mostly lacks) get no distracting context.
        default=0.35, ge=-1.0, le=1.0,
        description="Passages whose cosine similarity to the question is lower are not shown to the general expert",
    )
    goldsets_dir: Path = REPO_DIR / "goldsets"
    receipts_dir: Path = REPO_DIR / "receipts"
    shipped_programs_dir: Path | None = Field(
        default=REPO_DIR / "compiled",
        description="Optimized programs shipped with the project; a data dir without its own versions of a "
        "program starts from these (empty: start from the base programs)",
    )
    eval_thresholds: dict[str, float] = Field(
        # Just below the lower 95% bound of the first measured baselines (receipts/eval-*): a drop past
        # noise fails the gate, while the base programs pass.
        default_factory=lambda: {"math": 0.3, "code": 0.3, "general": 0.02, "router": 0.55},
        description="Minimum holdout score per gold set; `sme-mcp eval` exits non-zero below it",
    )

    @field_validator("shipped_programs_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def role(self, role: Role) -> RoleSettings:
        return getattr(self, role)
