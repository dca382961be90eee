"""The structured answer every entry point (MCP tool, CLI) returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sme_mcp.experts.settings import Domain


class ExpertAnswer(BaseModel):
    answer: str = Field(description="The answer (for code questions: the code, then a short explanation)")
    domain: Domain = Field(description="Which expert answered")
    routed_by: Literal["explicit", "fast_path", "router", "router_fallback"] = Field(
        description="explicit: the caller named the domain; fast_path: plain arithmetic, no LM; "
        "router: the LM router chose; router_fallback: the router failed and general answered"
    )
    confidence: float | None = Field(default=None, description="Router confidence (0-1), when it routed")
    reasoning: str | None = None
    code: str | None = Field(default=None, description="Code only, for code answers")
    backend: str = Field(description="Backend that produced the answer: local, a LiteLLM model, or sympy")
    model: str | None = Field(default=None, description="Model behind the backend")
    latency_ms: float
    tools_used: list[str] = Field(default_factory=list)
    program_version: str | None = Field(default=None, description="Active compiled program, if any")
    sources: list[dict[str, str]] = Field(
        default_factory=list, description="Documents the answer was grounded in: source path and title"
    )
