"""General answers: step-by-step reasoning against one sentence quoting the passage, before the answer.

With `general_reasoning` on, the general expert's ChainOfThought writes its reasoning before the answer: on
the tune questions a median of about 73 generated tokens, 5-6 s of decoding on 2 cores, while the answer itself
is a few words. Without reasoning (Predict) the expert was much faster but right less often (22/60 against 30/60,
receipts/eval-general-custom-20261207T041225Z.json). `SME_GENERAL_BRIEF_REASONING=true` keeps the reasoning
field and asks it for one short sentence quoting the words of the passage that answer. This script scores both
on the same questions with `sme-mcp eval --goldset` (the path `run_eval` and `ask_expert` take), DSPy's response
cache off, each run writing its receipt:

- ``step_by_step``: `SME_GENERAL_BRIEF_REASONING=false` (DSPy's ChainOfThought reasoning field);
- ``brief``: `SME_GENERAL_BRIEF_REASONING=true`.

The questions: the first 60 tune-half SQuAD questions of the demo corpus, the same 60 that chose
`general_reasoning`, `retrieval_keep_sentences` and `general_draft_first` (bench/general_draft_first.py). The
report half is not used.

The rule, fixed before the run: ``brief`` becomes the default if it answers at least as many questions right as
``step_by_step`` less one (exact match), with a lower median latency; otherwise ``step_by_step`` stays.

Usage:
    .venv/bin/python bench/general_brief_reasoning.py [--limit N] [--note "..."]
    .venv/bin/python bench/general_brief_reasoning.py --compare-only   # the verdict again from the JSON
"""

from __future__ import annotations

import sys
from typing import Any

from common import compare_again, conditions, decision_args, finish, paired, print_table, score_arms, write_result
from general_draft_first import side, tune_questions

ARMS = {"step_by_step": "false", "brief": "true"}
RULE = ("brief if it answers at least as many right as step_by_step less one (exact match) with a lower p50 "
        "latency; else step_by_step")
N_QUESTIONS = 60


def decide(body: dict[str, Any]) -> dict[str, Any]:
    """The paired comparison and the rule's verdict."""
    base, cand = body["step_by_step"], body["brief"]
    b, c, pvalue = paired(base, cand)
    wins = cand["correct"] >= base["correct"] - 1 and cand["latency_s"]["p50"] < base["latency_s"]["p50"]
    return {"only_step_by_step_right": b, "only_brief_right": c, "mcnemar_p": pvalue, "rule": RULE,
            "chosen": "brief" if wins else "step_by_step"}


def show(body: dict[str, Any]) -> None:
    print_table(["arm", "right (EM)", "token F1", "p50 s", "p95 s", "tokens generated p50", "prompt tokens p50",
                 "receipt"],
                [[a, f"{body[a]['correct']}/{body[a]['n']}", body[a]["mean_f1"], body[a]["latency_s"]["p50"],
                  body[a]["latency_s"]["p95"], body[a]["completion_tokens"]["p50"],
                  body[a]["prompt_tokens_evaluated"]["p50"], body[a]["receipt"]] for a in ARMS])
    d = body["decision"]
    print(f"paired: {d['only_step_by_step_right']} only step by step, {d['only_brief_right']} only brief, "
          f"McNemar p {d['mcnemar_p']}; chosen: {d['chosen']}")


def main() -> None:
    args = decision_args(__doc__, N_QUESTIONS, "the first N tune-half questions")
    if args.compare_only:
        return compare_again("general_brief_reasoning", decide, show)
    items = tune_questions(args.limit)
    cond = conditions(args.note)
    body: dict[str, Any] = {"questions": "first tune-half SQuAD questions of docs/demo_corpus",
                            "items": [i["id"] for i in items]}
    body.update(score_arms("general", items, "squad_tune60.jsonl", "SME_GENERAL_BRIEF_REASONING", ARMS, side))
    body["decision"] = decide(body)
    body["conditions"] = finish(cond)
    write_result("general_brief_reasoning", body)
    show(body)


if __name__ == "__main__":
    sys.exit(main())
