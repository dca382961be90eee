"""The structured answer every entry point (MCP tool, CLI) returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sme_mcp.experts.answer_trace import AnswerCost
from sme_mcp.experts.settings import Domain


class Verification(BaseModel):
    """What was checked about an answer before it was returned, and how that came out."""

    method: Literal["exact", "tests", "check", "grounding", "none"] = Field(
        description="exact: computed by SymPy; tests: code run against tests in the sandbox; check: a math answer "
        "checked by SymPy (substituted back, differentiated back, expanded); grounding: a general answer "
        "checked against the cited passages; none: nothing was checked"
    )
    outcome: Literal["passed", "failed", "partial", "grounded", "not_grounded", "not_in_documents", "unchecked"]
    checked: str = Field(description="What was checked, in words")
    tests_run: int | None = None
    tests_passed: int | None = None
    details: list[str] = Field(default_factory=list, description="Failed tests, the check's result, or the evidence")
    seconds: float | None = Field(default=None, description="Time the verification took")


class ExpertAnswer(BaseModel):
    id: str | None = Field(
        default=None, description="This answer's id in the local usage log: pass it to rate_answer to say whether "
        "the answer was right (None for answers not logged, e.g. in evaluations)",
    )
    answer: str = Field(description="The answer (for code questions: the code, then a short explanation)")
    domain: Domain = Field(description="Which expert answered")
    routed_by: Literal["explicit", "fast_path", "nearest_neighbours", "router", "router_fallback"] = Field(
        description="explicit: the caller named the domain; fast_path: an exact math request answered by SymPy "
        "with no LM; nearest_neighbours: the router's embedding stage chose (no LM); router: the router's LM "
        "stage chose; router_fallback: the router failed and general answered"
    )
    confidence: float | None = Field(
        default=None, description="Routing confidence (0-1): the neighbours' vote share or the LM router's own"
    )
    reasoning: str | None = None
    code: str | None = Field(default=None, description="Code only, for code answers")
    backend: str = Field(description="Backend that produced the answer: local, a LiteLLM model, or sympy")
    model: str | None = Field(default=None, description="Model behind the backend")
    deployment: str | None = Field(
        default=None, description="The LM deployment that served the last model call: a local replica and its URL, or "
        "the named endpoint",
    )
    latency_ms: float
    tools_used: list[str] = Field(default_factory=list)
    program_version: str | None = Field(default=None, description="Active compiled program, if any")
    sources: list[dict[str, str]] = Field(
        default_factory=list, description="Documents the answer was grounded in: source path and title"
    )
    verification: Verification | None = Field(
        default=None, description="What was checked before the answer was returned, and the outcome"
    )
    cost: AnswerCost | None = Field(
        default=None, description="LM calls, prompt tokens evaluated and cached, tokens generated, seconds per stage"
    )
