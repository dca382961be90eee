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
    from sme_mcp.experts.answer import Verification
    from sme_mcp.experts.math_program import ProgramRun
    from sme_mcp.experts.registry import ExpertRegistry

ImplausibleRetry = Literal["none", "fix", "sample", "fix_then_sample"]


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
    back once (`fix`), and chain of thought answers when that fails too. An answer the program
    printed that cannot be right is retried as `implausible_retry` says.

    Args:
        tools: The SymPy tools ReAct may call.
        max_iters: ReAct's step limit.
        word_problems: "reasoning" (ChainOfThought) or "program" (program of thought); the
            `math_word_problems` setting.
        implausible_retry: What a program whose answer cannot be right (`implausible_answer`: words
            for an amount, a negative count, a fraction that runs on) is followed by: "none", "fix"
            (the program goes back once with what is wrong with its answer), "sample" (one fresh
            program at temperature 0.7), or "fix_then_sample"; the `math_implausible_retry` setting.
            An answer no retry mends is returned with a failed check.

    Example:
        >>> expert = MathExpert(sympy_tools(pool), word_problems="program")  # doctest: +SKIP
        >>> with dspy.context(lm=lm):  # doctest: +SKIP
        ...     expert(question="3 notebooks at $4.50 and a $2 pen: what do I pay?").answer
        '15.5'
    """

    def __init__(self, tools: list[Callable[..., str]], max_iters: int = 5,
                 word_problems: Literal["reasoning", "program"] = "reasoning",
                 implausible_retry: ImplausibleRetry = "none") -> None:
        super().__init__()
        self.solve = LoopSafeReAct(SolveMath, tools=tools, max_iters=max_iters)
        self.reason = dspy.ChainOfThought(SolveWordProblem)
        self.word_problems = word_problems
        self.implausible_retry = implausible_retry
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

        from sme_mcp.experts.math_program import implausible_answer

        try:
            run = self.run_written(question)
            if run.answer is None:
                run = self.run_fixed(question, run.program, run.error or "")
        except AdapterParseError:
            return None
        if run.answer is None:
            return None
        doubt = implausible_answer(question, run.answer)
        if doubt is None:
            return self._program_answer(run, verification_of_program(run))
        first, retried = run, []
        for step in IMPLAUSIBLE_RETRY_STEPS[self.implausible_retry]:
            try:
                candidate = (self.run_fixed(question, first.program, implausible_error(first, doubt)) if step == "fix"
                             else self.run_written(question, sample=1))
            except AdapterParseError:
                retried.append(f"{step}: the reply did not parse")
                continue
            retried.append(f"{step}: {candidate.answer if candidate.answer is not None else candidate.error}")
            if candidate.answer is not None and implausible_answer(question, candidate.answer) is None:
                return self._program_answer(candidate, verification_of_program(candidate, first, doubt, retried))
        return self._program_answer(first, verification_of_program(first, first, doubt, retried))

    def run_written(self, question: str, sample: int = 0) -> ProgramRun:
        """A program written for the question (greedy; `sample` n > 0: the n-th at temperature 0.7), as run."""
        from sme_mcp.experts.math_program import PROGRAM_MAX_TOKENS, SAMPLE_TEMPERATURE, run_program

        config: dict[str, object] = {"max_tokens": PROGRAM_MAX_TOKENS}
        if sample:  # its own rollout: with DSPy's cache on the same prompt would return the greedy program
            config.update(temperature=SAMPLE_TEMPERATURE, rollout_id=sample)
        return run_program(str(self.compute(question=question, config=config).program or ""))

    def run_fixed(self, question: str, program: str, error: str) -> ProgramRun:
        """The program sent back with what went wrong (an error, or an answer that cannot be right), as run."""
        from sme_mcp.experts.math_program import PROGRAM_MAX_TOKENS, run_program

        fixed = self.fix(question=question, program=program, error=error, config={"max_tokens": PROGRAM_MAX_TOKENS})
        return run_program(str(fixed.fixed_program or ""))

    @staticmethod
    def _program_answer(run: ProgramRun, verification: Verification) -> dspy.Prediction:
        return dspy.Prediction(answer=run.answer,
                               reasoning=f"Computed by this program, run in the sandbox:\n{run.program}",
                               verification=verification)


IMPLAUSIBLE_RETRY_STEPS: dict[str, tuple[str, ...]] = {
    "none": (), "fix": ("fix",), "sample": ("sample",), "fix_then_sample": ("fix", "sample"),
}


def implausible_error(run: ProgramRun, doubt: str) -> str:
    """What the fix is told about a program that ran to an answer that cannot be right."""
    return f"It ran and printed {run.answer}, which cannot be the answer: {doubt}."


def verification_of_program(run: ProgramRun, first: ProgramRun | None = None, doubt: str | None = None,
                            retried: list[str] | None = None) -> Verification:
    """The verification of a word problem's program answer: unchecked when it looks plausible (with what came before
    it when a retry replaced an implausible first answer); failed when no retry gave a plausible one."""
    from sme_mcp.experts.answer import Verification

    if first is None:
        return Verification(method="none", outcome="unchecked", checked=(
            "the answer is what a Python program the model wrote printed when the sandbox ran it; it is a plausible "
            "answer for the question, but whether the program models the problem was not checked"))
    details = [f"first program printed {first.answer}: {doubt}", *(retried or [])]
    if run is not first:
        return Verification(method="none", outcome="unchecked", details=details, checked=(
            f"the first program's answer ({first.answer}) could not be right, so the program was written again; the "
            "answer is what the new program printed, a plausible answer, but whether it models the problem was not "
            "checked"))
    tried = f"; {len(retried)} more program(s) gave no plausible answer" if retried else ""
    return Verification(method="check", outcome="failed", details=details, checked=(
        f"the answer is what the model's program printed, and it cannot be right: {doubt}{tried}. Treat it as wrong"))


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
