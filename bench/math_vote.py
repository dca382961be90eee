"""Two programs that agree: do sampled programs make the math expert's word-problem answers right more often?

A word problem is answered by one greedy program the model writes and the sandbox runs (`math_word_problems=
program`): 42 of the 73 math dev word problems right (bench/math_implausible.py). Self-consistency (Wang et al.
2023) samples several reasoning paths and keeps the answer most of them reach; with programs, each path is a run.
This bench measures it on the math DEV split, at the cost it adds per answer.

Items: the 73 math dev word problems (not `is_symbolic`), asked of the shipped math program's word-problem path
(`MathExpert`: the greedy program, one fix if it fails, chain of thought if that fails too; the active program's
demos loaded), DSPy's caches off, one llama-server at `-t 2`. Each item runs once: the expert's greedy answer, then
two fresh programs at temperature 0.7 (`MathExpert.run_written(sample=1, 2)`, no fix). Answers are the same when
they are equal numbers (or equal text). Every policy is read off this one run:

- ``greedy`` (today): the expert's answer (1 call, more when its program fails);
- ``agree_or_third``: greedy and sample 1; if they agree, that answer; else sample 2 too and the answer two of
  the three share, the greedy one when all differ (2-3 calls);
- ``vote_of_3``: greedy, samples 1 and 2; the answer two share, the greedy one when all differ (3 calls).

Answers are scored with the math gold set's SymPy metric. Also reported: how often the answer is right when
greedy and sample 1 agree and when they do not (what a "two programs agree" check would say to a user).

The rule, fixed before the run: the policy with the most right answers (fewer LM calls on a tie) replaces
``greedy`` only if it gets at least 3 more right (each costs one or two more calls per word problem); otherwise
``greedy`` stays. The holdout split is never used here.

Usage:
    .venv/bin/python bench/math_vote.py [--limit N] [--note "..."]   # bench/results/math_vote.json
    .venv/bin/python bench/math_vote.py --compare-only              # the policy table again from the JSON
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
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

POLICIES = ("greedy", "agree_or_third", "vote_of_3")
TODAY = "greedy"
MARGIN = 3
RULE = (f"the policy with the most right answers (fewer LM calls on a tie) replaces '{TODAY}' only with at least "
        f"{MARGIN} more right")


def same(a: str | None, b: str | None) -> bool:
    """Whether two printed answers are the same: equal numbers, or equal text."""
    if a is None or b is None:
        return False
    try:
        return float(a.replace(",", "")) == float(b.replace(",", ""))
    except ValueError:
        return a.strip() == b.strip()


def majority(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """The version whose answer another version shares (the earliest such), else the first (greedy) one."""
    for version in versions:
        if sum(same(version["answer"], other["answer"]) for other in versions) >= 2:
            return version
    return versions[0]


def policy_outcome(policy: str, row: dict[str, Any]) -> dict[str, Any]:
    """One item under a policy: whether its answer is right, its LM calls and seconds."""
    greedy, first, second = row["versions"]
    if policy == "greedy":
        used = [greedy]
    elif policy == "agree_or_third":
        used = [greedy, first] if same(greedy["answer"], first["answer"]) else [greedy, first, second]
    else:
        used = [greedy, first, second]
    chosen = majority(used)
    return {"correct": chosen["correct"], "lm_calls": sum(v["lm_calls"] for v in used),
            "seconds": sum(v["seconds"] for v in used)}


def compare(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Each policy's figures, the policy the rule chooses, and accuracy by whether greedy and sample 1 agree."""
    today = [policy_outcome(TODAY, row)["correct"] for row in rows]
    policies = {}
    for name in POLICIES:
        figures = policy_figures([policy_outcome(name, row) for row in rows], today, "correct", digits=3)
        policies[name] = {"correct": figures.pop("right"), **figures}
    best = max(policies, key=lambda name: (policies[name]["correct"], -policies[name]["lm_calls_mean"]))
    chosen = best if policies[best]["correct"] >= policies[TODAY]["correct"] + MARGIN else TODAY
    agreement: Counter[str] = Counter()
    for row in rows:
        greedy, first, _ = row["versions"]
        key = "agree" if same(greedy["answer"], first["answer"]) else "disagree"
        agreement[key] += 1
        agreement[f"{key}_right"] += greedy["correct"]
    return policies, chosen, dict(agreement)


def print_comparison(policies: dict[str, Any], chosen: str, agreement: dict[str, Any]) -> None:
    print_table(["policy", "right", "95% CI", "LM calls/item", "s p50", "s p95", "only this / only today (p)"], [
        [name, f"{v['correct']}/{v['n']}", v["ci95"], v["lm_calls_mean"], v["seconds"]["p50"], v["seconds"]["p95"],
         f"{v['vs_today']['only_this']} / {v['vs_today']['only_today']} ({v['vs_today']['mcnemar_p']})"]
        for name, v in policies.items()])
    print(f"\ngreedy and sample 1 agree on {agreement.get('agree', 0)} items, greedy right on "
          f"{agreement.get('agree_right', 0)}; disagree on {agreement.get('disagree', 0)}, greedy right on "
          f"{agreement.get('disagree_right', 0)}")
    print(f"chosen by the rule: {chosen}")


def main() -> None:
    args = decision_args(__doc__, None, "first N word problems of math dev")
    sys.path.insert(0, str(REPO))
    out = "math_vote"
    if args.compare_only:
        result = json.loads((RESULTS / f"{out}.json").read_text())
        result["policies"], result["chosen"], result["agreement"] = compare(result["items"])
        result["setup"]["rule"] = RULE
        write_result(out, result)
        print_comparison(result["policies"], result["chosen"], result["agreement"])
        return

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from dspy.utils.exceptions import AdapterParseError

    from sme_mcp.experts.adapter import lm_context
    from sme_mcp.experts.math_program import SAMPLE_TEMPERATURE
    from sme_mcp.optimize.metrics import math_equivalent

    cond = conditions(args.note or "math dev word problems; -t 2; idle")
    rows: list[dict[str, Any]] = []
    with uncached_local_lm("math", 2, "math-vote") as (settings, lm, server):
        items, expert, program = math_word_problem_expert(settings, args.limit)
        for n, item in enumerate(items, 1):
            gold, versions = item.answer or "", []
            with lm_context(lm):
                started, calls_before = time.monotonic(), len(lm.history)
                answer = str(expert(question=item.question).answer or "")
                versions.append({"step": "greedy", "answer": answer, "correct": math_equivalent(answer, gold),
                                 "seconds": round(time.monotonic() - started, 2),
                                 "lm_calls": len(lm.history) - calls_before})
                for sample in (1, 2):
                    started = time.monotonic()
                    try:
                        run = expert.run_written(item.question, sample=sample)
                        answer_or_none = run.answer
                    except AdapterParseError:
                        answer_or_none = None
                    versions.append({"step": f"sample {sample}", "answer": answer_or_none,
                                     "correct": bool(answer_or_none is not None
                                                     and math_equivalent(answer_or_none, gold)),
                                     "seconds": round(time.monotonic() - started, 2), "lm_calls": 1})
            rows.append({"id": item.id, "gold": gold, "versions": versions})
            print(f"[{n}/{len(items)}] {item.id} (gold {gold}): "
                  f"{[(v['answer'], v['correct']) for v in versions]}", flush=True)

    policies, chosen, agreement = compare(rows)
    result = {
        "conditions": finish(cond),
        "setup": {"split": "dev", "items": "word problems (not is_symbolic)", "n": len(rows), "threads": 2,
                  "model": server.model_path.name if server.model_path else None,
                  "program": program, "temperature": SAMPLE_TEMPERATURE,
                  "lm_cache": False, "scoring": "optimize.metrics.math_equivalent against the gold answer",
                  "rule": RULE},
        "policies": policies, "chosen": chosen, "agreement": agreement, "items": rows,
    }
    path = write_result(out, result)
    print()
    print_comparison(policies, chosen, agreement)
    print(f"load average before {cond['loadavg_before']}, after {result['conditions']['loadavg_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
