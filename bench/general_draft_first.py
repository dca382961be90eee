"""General answers: the model's own answer first, kept when the passages support it, against passages always read.

The general expert's time on this hardware is mostly the model reading the 3 retrieved passages (about 500
prompt tokens, 5-10 s on 2 cores) before it writes an answer. With `SME_GENERAL_DRAFT_FIRST=true` it first
answers from its own knowledge (a short prompt, a few tokens) and returns that answer when the grounding check
(experts/grounding.py, no LM call) finds it in a passage sentence that covers the question; otherwise it reads
the passages as before, one short call later. This script scores both on the same questions with
`sme-mcp eval --goldset` (the path `run_eval` and `ask_expert` take), DSPy's response cache off, each run writing
its receipt:

- ``passages``: `SME_GENERAL_DRAFT_FIRST=false`, the passages always read (ChainOfThought(AnswerWithContext));
- ``draft_first``: `SME_GENERAL_DRAFT_FIRST=true`.

The questions: the first 60 tune-half SQuAD questions of the demo corpus (docs/demo_corpus/questions.jsonl,
`bench/grounding.half`), the same 60 that chose `general_reasoning` and `retrieval_keep_sentences`
(receipts/eval-general-custom-20261207T040357Z.json). The report half is not used.

The rule, fixed before the run: ``draft_first`` becomes the default if it answers at least as many questions
right as ``passages`` less one (exact match), with a lower median latency; otherwise ``passages`` stays.

Usage:
    .venv/bin/python bench/general_draft_first.py [--limit N] [--note "..."]  # bench/results/general_draft_first.json
    .venv/bin/python bench/general_draft_first.py --compare-only             # the verdict again from the JSON
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
from grounding import half

ARMS = {"passages": "false", "draft_first": "true"}
RULE = ("draft_first if it answers at least as many right as passages less one (exact match) with a lower p50 "
        "latency; else passages")
N_QUESTIONS = 60


def tune_questions(limit: int) -> list[dict[str, Any]]:
    """The first `limit` tune-half SQuAD questions of the demo corpus, as gold items."""
    rows = [json.loads(line) for line in (REPO / "docs" / "demo_corpus" / "questions.jsonl").read_text().splitlines()
            if line.strip()]
    chosen = [r for r in rows if half(r["id"]) == "tune"][:limit]
    return [{"id": r["id"], "domain": "general", "question": r["question"], "answer": r["answers"][0],
             "answers": r["answers"], "tests": [], "setup": "", "label": None, "source": r["source"]} for r in chosen]


def side(report: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-item results of one run, from its receipt's items."""
    costs = [i.get("cost") or {} for i in items]
    outcomes: dict[str, dict[str, int]] = {}
    for item in items:
        outcome = (item.get("verification") or {}).get("outcome") or "none"
        bucket = outcomes.setdefault(outcome, {"n": 0, "correct": 0})
        bucket["n"] += 1
        bucket["correct"] += bool(item["correct"])
    return {
        "receipt": report.get("receipt"), "n": len(items), "correct": sum(i["correct"] for i in items),
        "mean_f1": report.get("mean_f1"),
        "latency_s": summary([i["latency_s"] for i in items]),
        "lm_calls": summary([c.get("lm_calls") or 0 for c in costs]),
        "prompt_tokens_evaluated": summary([c.get("prompt_tokens_evaluated") or 0 for c in costs]),
        "completion_tokens": summary([c.get("completion_tokens") or 0 for c in costs]),
        "verification": outcomes,
        "items": [{"id": i["id"], "correct": i["correct"], "latency_s": i["latency_s"],
                   "prediction": str(i.get("prediction") or "")[:200], "lm_calls": c.get("lm_calls"),
                   "outcome": (i.get("verification") or {}).get("outcome"),
                   "drafted": "before reading the passages" in str((i.get("verification") or {}).get("checked"))}
                  for i, c in zip(items, costs, strict=True)],
    }


def decide(body: dict[str, Any]) -> dict[str, Any]:
    """The paired comparison and the rule's verdict."""
    base, cand = body["passages"], body["draft_first"]
    b, c, pvalue = paired(base, cand)
    wins = cand["correct"] >= base["correct"] - 1 and cand["latency_s"]["p50"] < base["latency_s"]["p50"]
    drafted = [i for i in cand["items"] if i["drafted"]]
    return {"only_passages_right": b, "only_draft_first_right": c, "mcnemar_p": pvalue,
            "drafted": {"n": len(drafted), "correct": sum(i["correct"] for i in drafted)},
            "rule": RULE, "chosen": "draft_first" if wins else "passages"}


def show(body: dict[str, Any]) -> None:
    print_table(["arm", "right (EM)", "token F1", "p50 s", "p95 s", "max s", "LM calls p50", "prompt tokens p50",
                 "receipt"],
                [[a, f"{body[a]['correct']}/{body[a]['n']}", body[a]["mean_f1"], body[a]["latency_s"]["p50"],
                  body[a]["latency_s"]["p95"], body[a]["latency_s"]["max"], body[a]["lm_calls"]["p50"],
                  body[a]["prompt_tokens_evaluated"]["p50"], body[a]["receipt"]] for a in ARMS])
    d = body["decision"]
    print(f"drafts returned: {d['drafted']['n']} ({d['drafted']['correct']} right); paired: "
          f"{d['only_passages_right']} only with passages, {d['only_draft_first_right']} only with a draft first, "
          f"McNemar p {d['mcnemar_p']}; chosen: {d['chosen']}")


def main() -> None:
    args = decision_args(__doc__, N_QUESTIONS, "the first N tune-half questions")
    if args.compare_only:
        return compare_again("general_draft_first", decide, show)
    items = tune_questions(args.limit)
    cond = conditions(args.note)
    body: dict[str, Any] = {"questions": "first tune-half SQuAD questions of docs/demo_corpus",
                            "items": [i["id"] for i in items]}
    body.update(score_arms("general", items, "squad_tune60.jsonl", "SME_GENERAL_DRAFT_FIRST", ARMS, side))
    body["decision"] = decide(body)
    body["conditions"] = finish(cond)
    write_result("general_draft_first", body)
    show(body)


if __name__ == "__main__":
    sys.exit(main())
