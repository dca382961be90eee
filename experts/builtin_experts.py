"""The built-in math, code and general experts, registered like any declared expert.

Example:
    >>> from sme_mcp.experts.registry import ExpertRegistry
    >>> registry = ExpertRegistry()
    >>> register_builtin_experts(registry)
    >>> [spec.metric for spec in registry]
    ['sympy', 'code_tests', 'exact_f1']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sme_mcp.experts.registry import ExpertRegistry, ExpertSpec

if TYPE_CHECKING:
    import dspy

    from sme_mcp.experts.service import ExpertService

ROUTER_DESCRIPTION = ("Chooses the expert for a question",
                      "nearest-neighbour vote over MiniLM embeddings; ChainOfThought(RouteQuestion) when the vote "
                      "is unsure")


def _math(service: ExpertService) -> dspy.Module:
    from sme_mcp.experts.math_tools import sympy_tools
    from sme_mcp.experts.modules import MathExpert

    return MathExpert(sympy_tools(service.pool), max_iters=service.settings.react_max_iters,
                      word_problems=service.settings.math_word_problems,
                      implausible_retry=service.settings.math_implausible_retry)


def _code(service: ExpertService) -> dspy.Module:
    from sme_mcp.experts.code_expert import VerifiedCodeExpert

    return VerifiedCodeExpert(repair_attempts=service.settings.code_repair_attempts,
                              alternatives=service.settings.code_alternatives,
                              reasoning=service.settings.code_reasoning,
                              max_lm_calls_self_checked=service.settings.code_calls_without_tests,
                              reasoning_without_tests=service.settings.code_reasoning_without_tests)


def _general(service: ExpertService) -> dspy.Module:
    from sme_mcp.experts.general_rag import RetrievalGeneralExpert

    return RetrievalGeneralExpert(service.search_documents, k=service.settings.retrieval_k,
                                  min_similarity=service.settings.retrieval_min_similarity,
                                  pool=service.settings.retrieval_pool,
                                  keep_sentences=service.settings.retrieval_keep_sentences,
                                  sentence_window=service.settings.retrieval_sentence_window,
                                  retry_echo=service.settings.general_retry_echo,
                                  reasoning=service.settings.general_reasoning,
                                  brief_reasoning=service.settings.general_brief_reasoning,
                                  draft_first=service.settings.general_draft_first,
                                  judge_grounding=service.settings.general_judge_grounding)


def _general_settings(service: ExpertService) -> dict[str, Any]:
    settings = service.settings
    found: dict[str, Any] = {"retrieval_k": settings.retrieval_k,
                             "retrieval_min_similarity": settings.retrieval_min_similarity,
                             "retrieval_pool": settings.retrieval_pool,
                             "retrieval_keep_sentences": settings.retrieval_keep_sentences,
                             "retrieval_sentence_window": settings.retrieval_sentence_window,
                             "general_retry_echo": settings.general_retry_echo,
                             "general_reasoning": settings.general_reasoning,
                             "general_brief_reasoning": settings.general_brief_reasoning,
                             "general_draft_first": settings.general_draft_first,
                             "general_judge_grounding": settings.general_judge_grounding}
    try:
        info = next((c for c in service.documents.collections() if c.name == "general"), None)
        found["collection"] = info.model_dump() if info is not None else None
    except Exception as exc:  # the receipt still gets written; it says why the collection is unknown
        found["collection"] = f"unavailable: {exc}"
    return found


def register_builtin_experts(registry: ExpertRegistry) -> None:
    """Registers math, code and general. Their thresholds sit just below the lower 95% bound of the first
    measured baselines (receipts/eval-*): a drop past noise fails the gate, while the base programs pass."""
    registry.register(ExpertSpec(
        name="math", description="Arithmetic, algebra, calculus and word problems; exact via SymPy tools",
        module="exact SymPy path for plain requests + ReAct(SolveMath) for formulas + word problems by "
               "Predict(WriteMathProgram) run in the sandbox (ChainOfThought(SolveWordProblem) when "
               "math_word_problems is reasoning, or when the program fails)",
        build=_math, metric="sympy", threshold=0.3,
        settings_for_receipt=lambda service: {"react_max_iters": service.settings.react_max_iters,
                                              "math_word_problems": service.settings.math_word_problems,
                                              "math_implausible_retry": service.settings.math_implausible_retry},
    ))
    registry.register(ExpertSpec(
        name="code", description="Writes Python code and runs it against the question's tests (or its own quick "
                                 "checks) in the sandbox, repairing failures; explains code, showing its real output",
        module="VerifiedCodeExpert: WriteCode + sandbox tests + RepairCode (ChainOfThought, or Predict when "
               "code_reasoning is off; the write of a question without tests per code_reasoning_without_tests), "
               "Predict(WriteChecks), Predict(ExplainCode)",
        build=_code, metric="code_tests", threshold=0.3,
        settings_for_receipt=lambda service: {"code_repair_attempts": service.settings.code_repair_attempts,
                                              "code_alternatives": service.settings.code_alternatives,
                                              "code_reasoning": service.settings.code_reasoning,
                                              "code_calls_without_tests": service.settings.code_calls_without_tests,
                                              "code_reasoning_without_tests":
                                                  service.settings.code_reasoning_without_tests},
    ))
    registry.register(ExpertSpec(
        name="general", description="Facts, definitions and everything else, grounded in the 'general' document "
                                    "collection",
        module="hybrid search + ChainOfThought(AnswerWithContext) (Predict when general_reasoning is off); with "
               "general_draft_first, Predict(AnswerClosedBook) first, kept when the passages support it; with "
               "general_judge_grounding, Predict(JudgeSupport) confirms a grounded answer's sentence",
        build=_general, metric="exact_f1", threshold=0.02, settings_for_receipt=_general_settings,
    ))
