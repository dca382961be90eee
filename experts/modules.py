"""The DSPy programs: the router and one expert per domain. Each is optimizable on its own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import dspy

from sme_mcp.experts.math_kind import is_symbolic
from sme_mcp.experts.router_stage import NearestNeighbourStage
from sme_mcp.experts.signatures import (
    AnswerGeneral,
    FixMathProgram,
    RouteQuestion,
    SolveMath,
    SolveWordProblem,
    WriteCode,
    WriteMathProgram,
)

if TYPE_CHECKING:
    from sme_mcp.experts.registry import ExpertRegistry


class ExpertRouter(dspy.Module):
    """Picks the expert for a question, with a confidence: nearest neighbours first, the LM if unsure.

    Args:
        nearest: The first stage (no LM call); None routes every question through the LM stage.

    The prediction's `stage` says which stage decided: `nearest_neighbours` or `lm`.
    """

    def __init__(self, nearest: NearestNeighbourStage | None = None) -> None:
        super().__init__()
        self.route = dspy.ChainOfThought(RouteQuestion)
        self.nearest = nearest
        self.use_nearest = nearest is not None

    def forward(self, question: str) -> dspy.Prediction:
        vote = self.nearest.vote(question) if self.use_nearest and self.nearest is not None else None
        if vote is not None and vote.decided:
            return dspy.Prediction(domain=vote.label, confidence=vote.share, stage="nearest_neighbours",
                                   reasoning=f"nearest known questions: {vote.share:.0%} {vote.label} "
                                   f"(closest similarity {vote.similarity:.2f})")
        return self.lm_route(question)

    def set_experts(self, registry: ExpertRegistry) -> None:
        """Lets the LM stage choose among the registry's experts: its output type and instructions list them.

        The built-in experts' signature is kept as it is (compiled routers were optimized on it); declared
        experts are added to the choice and to the instructions, also after a compiled program loaded.
        """
        from typing import Literal

        builtin = ("math", "code", "general")
        names = registry.names
        predict = self.route.predict
        base = predict.signature
        extra = [n for n in names if n not in builtin]
        instructions = base.instructions.split("\nMore experts:")[0]
        if extra:
            instructions += "\nMore experts:\n" + registry.describe(extra)
        predict.signature = base.with_updated_fields("domain", type_=Literal[tuple(names)]).with_instructions(
            instructions)

    def lm_route(self, question: str) -> dspy.Prediction:
        """The LM stage alone."""
        # JSON output lets the server's grammar enforce the Literal domain.
        with dspy.context(adapter=dspy.JSONAdapter()):
            pred = self.route(question=question)
        pred.stage = "lm"
        return pred


class LoopSafeReAct(dspy.ReAct):
    """ReAct that ends the trajectory when a step makes no progress.

    Small local models often never pick `finish` and instead repeat the last tool call until
    `max_iters`, each repeat costing seconds. A step that repeats the previous call, or gets the
    same observation again, ends the loop; the answer is then extracted as usual.
    """

    def forward(self, **input_args: object) -> dspy.Prediction:
        from dspy.utils.exceptions import ContextWindowExceededError

        trajectory: dict[str, object] = {}
        max_iters = int(input_args.pop("max_iters", self.max_iters))  # type: ignore[call-overload]
        for idx in range(max_iters):
            try:
                pred = self._call_with_potential_trajectory_truncation(self.react, trajectory, **input_args)
            except (ContextWindowExceededError, ValueError) as err:
                logging.getLogger(__name__).warning("ending the trajectory: %s", err)
                break
            call = (pred.next_tool_name, pred.next_tool_args)
            trajectory[f"thought_{idx}"] = pred.next_thought
            trajectory[f"tool_name_{idx}"] = pred.next_tool_name
            trajectory[f"tool_args_{idx}"] = pred.next_tool_args
            if idx and call == (trajectory[f"tool_name_{idx - 1}"], trajectory[f"tool_args_{idx - 1}"]):
                trajectory[f"observation_{idx}"] = "Repeated call; finishing."
                break
            try:
                trajectory[f"observation_{idx}"] = self.tools[pred.next_tool_name](**pred.next_tool_args)
            except Exception as err:
                trajectory[f"observation_{idx}"] = f"Execution error in {pred.next_tool_name}: {err}"
            if pred.next_tool_name == "finish":
                break
            if idx and trajectory[f"observation_{idx}"] == trajectory[f"observation_{idx - 1}"]:
                break
        extract = self._call_with_potential_trajectory_truncation(self.extract, trajectory, **input_args)
        return dspy.Prediction(trajectory=trajectory, **extract)


class MathExpert(dspy.Module):
    """LoopSafeReAct over the SymPy tools for formulas; chain of thought or a program for word problems.

    The exact arithmetic fast path runs before either, in the service. On the first 20 GSM8K
    items of the dev split the 1.5B model solved 10 with plain chain of thought and far fewer
    through ReAct, whose tool-call format costs it the thread of the story; symbolic questions
    need the tools' exactness. With `word_problems="program"` a word problem is answered by a
    short Python program the model writes (`compute`) and the sandbox runs; a failed run goes
    back once (`fix`), and chain of thought answers when that fails too.

    Args:
        tools: The SymPy tools ReAct may call.
        max_iters: ReAct's step limit.
        word_problems: "reasoning" (ChainOfThought) or "program" (program of thought); the
            `math_word_problems` setting.

    Example:
        >>> expert = MathExpert(sympy_tools(pool), word_problems="program")  # doctest: +SKIP
        >>> with dspy.context(lm=lm):  # doctest: +SKIP
        ...     expert(question="3 notebooks at $4.50 and a $2 pen: what do I pay?").answer
        '15.5'
    """

    def __init__(self, tools: list[Callable[..., str]], max_iters: int = 5,
                 word_problems: Literal["reasoning", "program"] = "reasoning") -> None:
        super().__init__()
        self.solve = LoopSafeReAct(SolveMath, tools=tools, max_iters=max_iters)
        self.reason = dspy.ChainOfThought(SolveWordProblem)
        self.word_problems = word_problems
        if word_problems == "program":  # only then: programs saved without these predictors load unchanged
            self.compute = dspy.Predict(WriteMathProgram)
            self.fix = dspy.Predict(FixMathProgram)

    def forward(self, question: str) -> dspy.Prediction:
        if not is_symbolic(question):
            if self.word_problems == "program":
                computed = self._by_program(question)
                if computed is not None:
                    return computed
            return self.reason(question=question)
        # With the chat format the 1.5B model re-writes the trajectory markers and runs to
        # max_tokens; schema-constrained JSON keeps every step to one short, parseable object.
        with dspy.context(adapter=dspy.JSONAdapter()):
            return self.solve(question=question)

    def _by_program(self, question: str) -> dspy.Prediction | None:
        """The answer a program printed, after at most one fix; None when no program ran to an answer."""
        from dspy.utils.exceptions import AdapterParseError

        from sme_mcp.experts.answer import Verification
        from sme_mcp.experts.math_program import PROGRAM_MAX_TOKENS, run_program

        capped = {"max_tokens": PROGRAM_MAX_TOKENS}
        try:
            run = run_program(str(self.compute(question=question, config=capped).program or ""))
            if run.answer is None:
                fixed = self.fix(question=question, program=run.program, error=run.error or "", config=capped)
                run = run_program(str(fixed.fixed_program or ""))
        except AdapterParseError:
            return None
        if run.answer is None:
            return None
        checked = ("the answer is what a Python program the model wrote printed when the sandbox ran it; whether the "
                   "program models the problem was not checked")
        return dspy.Prediction(answer=run.answer,
                               reasoning=f"Computed by this program, run in the sandbox:\n{run.program}",
                               verification=Verification(method="none", outcome="unchecked", checked=checked))


class CodeExpert(dspy.Module):
    """Writes Python code with a short explanation."""

    def __init__(self) -> None:
        super().__init__()
        self.write = dspy.ChainOfThought(WriteCode)

    def forward(self, question: str) -> dspy.Prediction:
        return self.write(question=question)


class GeneralExpert(dspy.Module):
    """Answers general questions concisely."""

    def __init__(self) -> None:
        super().__init__()
        self.respond = dspy.ChainOfThought(AnswerGeneral)

    def forward(self, question: str) -> dspy.Prediction:
        return self.respond(question=question)
