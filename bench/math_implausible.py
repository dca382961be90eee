"""Answers that cannot be right: what the math expert should do when a word problem's program prints one.

A word problem is answered by a short program the model writes and the sandbox runs (`math_word_problems=program`).
Reading the math holdout receipt at 55e8f5f (eval-math-holdout-20261207T104523Z.json), 11 of the 39 wrong GSM8K
answers could be seen to be wrong without the gold: negative counts (-38 for a number of hours), fractions that run
on (89.108910891 for a number of people), a sentence instead of a number. So the holdout suggested the kinds of
answer; `experts/math_program.py::implausible_answer`'s rule was then set on math dev, where it flags 6 of the 31
wrong answers of eval-math-custom-20261207T101809Z.json and none of the right ones (10 of 39 wrong and none right
on that holdout receipt). This bench measures what to do once it has: the program goes back
once with what is wrong with its answer (a fix), or a fresh program is sampled at temperature 0.7, or both.

Items: the math DEV word problems (not `is_symbolic`, the 73 GSM8K items `bench/math_word_problems.py` used), asked
of the shipped math program's word-problem path (`MathExpert._by_program`, the active program's demos loaded; a
question with no program answer falls back to chain of thought as in the expert), DSPy's caches off, one
llama-server at `-t 2`. Each item runs once: the greedy program (and its one error fix); when its answer is
implausible, both a fix told why and one fresh sample are made and scored, so every policy is read off this one run:

- ``none`` (today): the implausible answer is returned, marked as a failed check;
- ``fix``: the fix's answer when it is plausible, else the first;
- ``sample``: the sample's answer when it is plausible, else the first;
- ``fix_then_sample``: the fix's when plausible, else the sample's when plausible, else the first.

Answers are scored with the math gold set's SymPy metric. The rule, fixed before the run: the policy with the most
right answers (fewer LM calls on a tie) replaces ``none`` only if it gets at least 2 more right; otherwise ``none``
stays. The holdout split is never used here; it is measured afterwards with `sme-mcp eval --domain math --split
holdout` at the chosen setting.

Usage:
    .venv/bin/python bench/math_implausible.py [--limit N] [--note "..."]   # bench/results/math_implausible.json
    .venv/bin/python bench/math_implausible.py --compare-only              # the policy table again from the JSON
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from common import (
    REPO,
    RESULTS,
    conditions,
    decision_args,
    finish,
    math_word_problem_expert,
    policy_figures,
    print_table,
    uncached_local_lm,
    write_result,
)

POLICIES: dict[str, list[str]] = {
    "none": ["first"], "fix": ["first", "fix"], "sample": ["first", "sample"],
    "fix_then_sample": ["first", "fix", "sample"],
}
TODAY = "none"
MARGIN = 2
RULE = (f"the policy with the most right answers (fewer LM calls on a tie) replaces '{TODAY}' only with at least "
        f"{MARGIN} more right")


def policy_outcome(steps: list[str], row: dict[str, Any]) -> dict[str, Any]:
    """One item under a policy: the answer it returns, whether it is right, its LM calls and seconds."""
    versions = {v["step"]: v for v in row["versions"]}
    used = [versions["first"]]
    if versions["first"]["implausible"]:
        for step in steps[1:]:
            used.append(versions[step])
            if versions[step]["answer"] is not None and not versions[step]["implausible"]:
                break
    plausible = [v for v in used[1:] if v["answer"] is not None and not v["implausible"]]
    chosen = plausible[0] if plausible else used[0]
    return {"correct": chosen["correct"], "answer": chosen["answer"], "step": chosen["step"],
            "lm_calls": sum(v["lm_calls"] for v in used), "seconds": sum(v["seconds"] for v in used)}


def compare(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Each policy's right answers, LM calls and seconds, and the policy the rule chooses."""
    today = [policy_outcome(POLICIES[TODAY], row)["correct"] for row in rows]
    policies = {}
    for name, steps in POLICIES.items():
        outcomes = [policy_outcome(steps, row) for row in rows]
        figures = policy_figures(outcomes, today, "correct", digits=3)
        flagged = [o for o, row in zip(outcomes, rows, strict=True) if row["versions"][0]["implausible"]]
        policies[name] = {"correct": figures.pop("right"), **figures, "implausible_items": len(flagged),
                          "implausible_right": sum(o["correct"] for o in flagged),
                          "still_implausible": sum(o["step"] == "first" for o in flagged)}
    best = max(policies, key=lambda name: (policies[name]["correct"], -policies[name]["lm_calls_mean"]))
    chosen = best if policies[best]["correct"] >= policies[TODAY]["correct"] + MARGIN else TODAY
    return policies, chosen


def print_comparison(policies: dict[str, Any], chosen: str) -> None:
    print_table(["policy", "right", "95% CI", "implausible: right / still implausible", "LM calls/item", "s p50",
                 "s p95", "only this / only today (p)"], [
        [name, f"{v['correct']}/{v['n']}", v["ci95"],
         f"{v['implausible_right']}/{v['implausible_items']} / {v['still_implausible']}", v["lm_calls_mean"],
         v["seconds"]["p50"], v["seconds"]["p95"],
         f"{v['vs_today']['only_this']} / {v['vs_today']['only_today']} ({v['vs_today']['mcnemar_p']})"]
        for name, v in policies.items()])
    print(f"\nchosen by the rule: {chosen}")


def version(step: str, run: Any, question: str, gold: str, seconds: float, lm_calls: int) -> dict[str, Any]:
    """One program's answer, scored, and whether it looks implausible."""
    from sme_mcp.experts.math_program import implausible_answer
    from sme_mcp.optimize.metrics import math_equivalent

    answer = run.answer if run is not None else None
    doubt = implausible_answer(question, answer) if answer is not None else None
    return {"step": step, "answer": answer, "implausible": doubt is not None, "doubt": doubt,
            "correct": bool(answer is not None and math_equivalent(answer, gold)),
            "error": None if run is None or answer is not None else (run.error or "")[:200],
            "program": run.program if run is not None else "", "seconds": round(seconds, 2), "lm_calls": lm_calls}


def main() -> None:
    args = decision_args(__doc__, None, "first N word problems of math dev")
    sys.path.insert(0, str(REPO))
    out = "math_implausible"
    if args.compare_only:
        result = json.loads((RESULTS / f"{out}.json").read_text())
        result["policies"], result["chosen"] = compare(result["items"])
        result["setup"]["rule"] = RULE
        write_result(out, result)
        print_comparison(result["policies"], result["chosen"])
        return

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from dspy.utils.exceptions import AdapterParseError

    from sme_mcp.experts.adapter import lm_context
    from sme_mcp.experts.math_program import SAMPLE_TEMPERATURE, implausible_answer
    from sme_mcp.experts.modules import implausible_error
    from sme_mcp.optimize.metrics import math_equivalent

    cond = conditions(args.note or "math dev word problems; -t 2; idle")
    rows: list[dict[str, Any]] = []
    with uncached_local_lm("math", 2, "math-implausible") as (settings, lm, server):
        items, expert, program = math_word_problem_expert(settings, args.limit)

        def timed(call: Any) -> tuple[Any, float]:
            started = time.monotonic()
            try:
                return call(), time.monotonic() - started
            except AdapterParseError:
                return None, time.monotonic() - started

        for n, item in enumerate(items, 1):
            question, gold = item.question, item.answer or ""
            with lm_context(lm):
                run, seconds = timed(lambda: expert.run_written(question))  # noqa: B023
                calls = 1
                if run is not None and run.answer is None:
                    fixed, more = timed(lambda: expert.run_fixed(question, run.program, run.error or ""))  # noqa: B023
                    run, seconds, calls = fixed, seconds + more, 2
                if run is None or run.answer is None:  # no program answer: chain of thought, as in the expert
                    started = time.monotonic()
                    reasoned = expert.reason(question=question)
                    answer = str(reasoned.answer or "")
                    versions = [{"step": "first", "answer": answer, "implausible": False, "doubt": None,
                                 "correct": math_equivalent(answer, gold),
                                 "error": "no program answer: chain of thought",
                                 "program": "", "seconds": round(seconds + time.monotonic() - started, 2),
                                 "lm_calls": calls + 1}]
                else:
                    versions = [version("first", run, question, gold, seconds, calls)]
                    if versions[0]["implausible"]:
                        doubt = implausible_answer(question, run.answer) or ""
                        fixed, seconds = timed(lambda: expert.run_fixed(  # noqa: B023
                            question, run.program, implausible_error(run, doubt)))  # noqa: B023
                        versions.append(version("fix", fixed, question, gold, seconds, 1))
                        sampled, seconds = timed(lambda: expert.run_written(question, sample=1))  # noqa: B023
                        versions.append(version("sample", sampled, question, gold, seconds, 1))
            rows.append({"id": item.id, "gold": gold, "versions": versions})
            print(f"[{n}/{len(items)}] {item.id}: "
                  f"{[(v['step'], v['answer'], v['implausible'], v['correct']) for v in versions]}", flush=True)

    policies, chosen = compare(rows)
    result = {
        "conditions": finish(cond),
        "setup": {"split": "dev", "items": "word problems (not is_symbolic)", "n": len(rows), "threads": 2,
                  "model": server.model_path.name if server.model_path else None,
                  "program": program, "temperature": SAMPLE_TEMPERATURE,
                  "lm_cache": False, "scoring": "optimize.metrics.math_equivalent against the gold answer",
                  "rule": RULE},
        "policies": policies, "chosen": chosen, "items": rows,
    }
    path = write_result(out, result)
    print()
    print_comparison(policies, chosen)
    print(f"load average before {cond['loadavg_before']}, after {result['conditions']['loadavg_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
