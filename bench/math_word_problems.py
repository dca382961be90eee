"""Word problems: chain of thought against program of thought, on the math DEV split (issue #12, item 2).

Every math dev item that is not a symbolic request (`experts.math_kind.is_symbolic` false: the GSM8K word
problems) is scored twice with `sme-mcp eval --goldset` (the path `run_eval` and `ask_expert` take: exact
fast path, then the math expert, the SymPy metric), DSPy's response cache off, each run writing its receipt:

- ``reasoning``: `SME_MATH_WORD_PROBLEMS=reasoning`, ChainOfThought(SolveWordProblem), the shipped program's
  demos included (compiled/math);
- ``program``: `SME_MATH_WORD_PROBLEMS=program`, the model writes a short Python program (Predict, no demos),
  the sandbox runs it, one fix if it fails, chain of thought if that fails too.

The rule, fixed before the run: ``program`` becomes the default if it answers more items right than
``reasoning``, or as many with a lower median latency; otherwise ``reasoning`` stays. The holdout split is never
used here; the math holdout is measured afterwards with `sme-mcp eval --domain math --split holdout`.

Usage:
    .venv/bin/python bench/math_word_problems.py [--limit N] [--note "..."]  # bench/results/math_word_problems.json
    .venv/bin/python bench/math_word_problems.py --compare-only             # the verdict again from the JSON
"""

from __future__ import annotations

import json
import sys
from typing import Any

from common import (
    REPO,
    compare_again,
    conditions,
    decision_args,
    finish,
    paired,
    print_table,
    score_arms,
    summary,
    write_result,
)

STYLES = ("reasoning", "program")
RULE = ("program if it answers more items right than reasoning, or as many with a lower p50 latency; "
        "else reasoning")


def word_problems(limit: int | None) -> list[dict[str, Any]]:
    """The dev items that are not symbolic requests, in the split's order."""
    from sme_mcp.experts.math_kind import is_symbolic

    rows = [json.loads(line) for line in (REPO / "goldsets" / "math" / "dev.jsonl").read_text().splitlines() if line]
    chosen = [r for r in rows if not is_symbolic(r["question"])]
    return chosen[:limit] if limit else chosen


def side(report: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-item results of one run, from its receipt's items."""
    costs = [i.get("cost") or {} for i in items]
    return {
        "receipt": report.get("receipt"), "n": len(items), "correct": sum(i["correct"] for i in items),
        "latency_s": summary([i["latency_s"] for i in items]),
        "lm_calls": summary([c.get("lm_calls") or 0 for c in costs]),
        "completion_tokens": summary([c.get("completion_tokens") or 0 for c in costs]),
        "prompt_tokens_evaluated": summary([c.get("prompt_tokens_evaluated") or 0 for c in costs]),
        "items": [{"id": i["id"], "correct": i["correct"], "latency_s": i["latency_s"],
                   "prediction": str(i.get("prediction") or "")[:200], "lm_calls": c.get("lm_calls"),
                   "completion_tokens": c.get("completion_tokens")} for i, c in zip(items, costs, strict=True)],
    }


def decide(body: dict[str, Any]) -> dict[str, Any]:
    """The paired comparison and the rule's verdict."""
    r, p = body["reasoning"], body["program"]
    b, c, pvalue = paired(r, p)
    wins = p["correct"] > r["correct"] or (p["correct"] == r["correct"]
                                           and p["latency_s"]["p50"] < r["latency_s"]["p50"])
    return {"only_reasoning_right": b, "only_program_right": c, "mcnemar_p": pvalue,
            "rule": RULE, "chosen": "program" if wins else "reasoning"}


def show(body: dict[str, Any]) -> None:
    print_table(["style", "right", "p50 s", "p95 s", "max s", "LM calls p50", "tokens generated p50", "receipt"],
                [[s, f"{body[s]['correct']}/{body[s]['n']}", body[s]["latency_s"]["p50"], body[s]["latency_s"]["p95"],
                  body[s]["latency_s"]["max"], body[s]["lm_calls"]["p50"], body[s]["completion_tokens"]["p50"],
                  body[s]["receipt"]] for s in STYLES])
    d = body["decision"]
    print(f"paired: {d['only_reasoning_right']} only with reasoning, {d['only_program_right']} only with a program, "
          f"McNemar p {d['mcnemar_p']}; chosen: {d['chosen']}")


def main() -> None:
    args = decision_args(__doc__, None, "only the first N word problems")
    if args.compare_only:
        return compare_again("math_word_problems", decide, show)
    items = word_problems(args.limit)
    cond = conditions(args.note)
    body: dict[str, Any] = {"split": "dev", "items": [i["id"] for i in items]}
    body.update(score_arms("math", items, "math_dev_word_problems.jsonl", "SME_MATH_WORD_PROBLEMS",
                           {style: style for style in STYLES}, side))
    body["decision"] = decide(body)
    body["conditions"] = finish(cond)
    write_result("math_word_problems", body)
    show(body)


if __name__ == "__main__":
    sys.exit(main())
