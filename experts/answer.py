"""The structured answer every entry point (MCP tool, CLI) returns."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from sme_mcp.config.settings import Domain
from sme_mcp.experts.answer_trace import AnswerCost
from sme_mcp.tools.markdown import strip_fences

if TYPE_CHECKING:
    from sme_mcp.experts.lm import Served


class Verification(BaseModel):
    """What was checked about an answer before it was returned, and how that came out."""

    method: Literal["exact", "tests", "check", "grounding", "none"] = Field(
        description="exact: computed by SymPy; tests: code run against tests in the sandbox; check: a math answer "
        "checked by SymPy (substituted back, differentiated back, expanded) or a word problem's answer checked for "
        "plausibility (a number, not negative, not a fraction that runs on); grounding: a general answer "
        "checked against the cited passages; none: nothing was checked"
    )
    outcome: Literal["passed", "failed", "partial", "grounded", "not_grounded", "not_in_documents", "unchecked"]
    checked: str = Field(description="What was checked, in words")
    tests_run: int | None = None
    tests_passed: int | None = None
    details: list[str] = Field(default_factory=list, description="Failed tests, the check's result, or the evidence")
    seconds: float | None = Field(default=None, description="Time the verification took")
    confidence: float | None = Field(
        default=None, description="How often answers of this expert with this outcome were right in its largest "
        "evaluation (experts/track_record.py); None when that outcome was too rare there to say")
    confidence_basis: str | None = Field(default=None, description="The count and the receipt the confidence rests on")


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


def answer_from_prediction(pred: Any, served: Served, domain: str, routed_by: Any, confidence: float | None,
                           started: float, program_version: str | None = None) -> ExpertAnswer:
    """The `ExpertAnswer` of an expert's prediction: its answer (code in a fence, then the explanation, for the
    code expert), reasoning, tools used, sources and how it was verified."""
    trajectory = getattr(pred, "trajectory", None) or {}
    tools = [v for k, v in trajectory.items() if k.startswith("tool_name_") and v != "finish"]
    code = None
    if domain == "code":
        code = strip_fences(str(pred.code or "")) or None  # an explanation may come without code
        explanation = str(pred.explanation or "").strip()
        answer = f"```python\n{code}\n```\n\n{explanation}".strip() if code else explanation
    else:
        answer = str(pred.answer).strip()
    # An expert that checks its answer says how (a Verification or its dict); the rest say nothing was.
    verification = getattr(pred, "verification", None)
    if isinstance(verification, dict):
        verification = Verification(**verification)
    if not isinstance(verification, Verification):
        verification = Verification(method="none", outcome="unchecked", checked="the answer was not checked")
    return ExpertAnswer(
        answer=answer, domain=domain, routed_by=routed_by, confidence=confidence,
        reasoning=getattr(pred, "reasoning", None), code=code, backend=served.label, model=served.model,
        deployment=served.deployment,
        latency_ms=(time.perf_counter() - started) * 1000, tools_used=tools,
        program_version=program_version, sources=list(getattr(pred, "sources", None) or []),
        verification=verification,
    )
