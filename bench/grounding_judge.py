"""General answers called grounded: does the model, shown the sentence found, confirm it answers the question?

The lexical grounding check (experts/grounding.py, no LM call) calls an answer `grounded` when it is named in a
passage sentence covering enough of the question's words. It cannot read relations: "Its capital is Melbourne"
in a passage about Victoria, Australia covers "capital" and "Australia", so "Melbourne" for the capital of
Australia came out grounded, and so did "Cam Newton" for Super Bowl 50's MVP (the passage names him the NFL's
season MVP). With `SME_GENERAL_JUDGE_GROUNDING=true` the general expert shows the model that sentence (title,
sentence before, sentence) with the question and the answer, and asks whether it says the answer answers the
question (`JudgeSupport`, a few dozen prompt tokens, one word out); an answer it does not confirm is `partial`.
The answers themselves do not change.

This script runs `sme-mcp eval --goldset` (the path `run_eval` and `ask_expert` take) with the judge on, DSPy's
response cache off, on the first 60 tune-half SQuAD questions of the demo corpus (the 60 that chose the other
general settings; the report half is not used), and reads from the receipt, per answer the lexical check called
grounded, whether the model confirmed it, whether the answer was right (exact match), and the seconds the
judgment took.

Beside them, to report and not to choose: the first 80 NQ-open questions of the general holdout split, which
the demo corpus mostly does not answer. Every answer the lexical check calls grounded is judged, so one run
gives the share called grounded without the judge (all judged answers) and with it (the confirmed ones).

The rule, fixed before the run: the judge becomes the default if it withdraws `grounded` from at least a third
of the wrong answers the lexical check called grounded, and from at most a tenth of the right ones (at least
one may be withdrawn); otherwise it stays off.

Usage:
    .venv/bin/python bench/grounding_judge.py [--limit N] [--note "..."]  # bench/results/grounding_judge.json
    .venv/bin/python bench/grounding_judge.py --compare-only             # the verdict again from the JSON
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (
    REPO,
    compare_again,
    conditions,
    decision_args,
    eval_goldset,
    finish,
    print_table,
    summary,
    write_result,
)
from general_draft_first import N_QUESTIONS, tune_questions

RULE = ("judge on if it withdraws grounded from at least a third of the wrong answers the lexical check called "
        "grounded and from at most a tenth of the right ones (at least one); else off")
# NQ-open questions, reported only; fewer than the 100 of the evaluation experts/track_record.json is built from, which
# a run of more (or as many, newer) would displace as the general expert's record of what its outcomes are worth.
N_ELSEWHERE = 80
JUDGMENTS = {"confirmed it answers": "confirmed", "did not confirm": "withdrawn", "could not be read": "unreadable"}


def judgment(verification: dict[str, Any] | None) -> str | None:
    """What the judge said of an answer ("confirmed", "withdrawn", "unreadable"); None when it was not asked."""
    checked = str((verification or {}).get("checked") or "")
    return next((label for phrase, label in JUDGMENTS.items() if phrase in checked), None)


def tally(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Per judgment, the answers and how many were right; the judged answers' seconds of verification."""
    rows = [{"id": i["id"], "correct": i["correct"], "prediction": str(i.get("prediction") or "")[:200],
             "judgment": judgment(i.get("verification")), "latency_s": i["latency_s"],
             "verification_s": (i.get("verification") or {}).get("seconds"),
             "outcome": (i.get("verification") or {}).get("outcome")} for i in items]
    judged = [r for r in rows if r["judgment"]]
    counts = {label: {"n": sum(r["judgment"] == label for r in judged),
                      "correct": sum(r["judgment"] == label and r["correct"] for r in judged)}
              for label in JUDGMENTS.values()}
    return {"n": len(rows), "correct": sum(r["correct"] for r in rows), "judged": counts,
            "lexically_grounded": {"n": len(judged), "correct": sum(r["correct"] for r in judged)},
            "judge_seconds": summary([r["verification_s"] for r in judged if r["verification_s"] is not None]),
            "latency_s": summary([r["latency_s"] for r in rows]), "items": rows}


def decide(body: dict[str, Any]) -> dict[str, Any]:
    """The rule's verdict, with the precision of `grounded` before and after the judge."""
    t = body["judge"]
    right, wrong = t["lexically_grounded"]["correct"], t["lexically_grounded"]["n"] - t["lexically_grounded"]["correct"]
    withdrawn_right = t["judged"]["withdrawn"]["correct"]
    withdrawn_wrong = t["judged"]["withdrawn"]["n"] - withdrawn_right
    on = withdrawn_wrong >= math.ceil(wrong / 3) and withdrawn_right <= max(1, right // 10) and withdrawn_wrong > 0
    kept = t["lexically_grounded"]["n"] - t["judged"]["withdrawn"]["n"]
    return {"withdrawn_from_wrong": f"{withdrawn_wrong}/{wrong}", "withdrawn_from_right": f"{withdrawn_right}/{right}",
            "grounded_precision_lexical": round(right / t["lexically_grounded"]["n"], 3) if right + wrong else None,
            "grounded_precision_judged": round((right - withdrawn_right) / kept, 3) if kept else None,
            "rule": RULE, "chosen": "on" if on else "off"}


def show(body: dict[str, Any]) -> None:
    t = body["judge"]
    print_table(["judgment", "answers", "right"],
                [[label, c["n"], c["correct"]] for label, c in t["judged"].items()])
    print(f"EM {t['correct']}/{t['n']}; p50 {t['latency_s']['p50']} s; judge seconds {t['judge_seconds']}; "
          f"receipt {body['receipt']}")
    if "nq_open" in body:
        nq = body["nq_open"]
        print(f"NQ-open (holdout, reported only): {nq['n']} answers, {nq['lexically_grounded']['n']} called grounded "
              f"by the lexical check, {nq['judged']['confirmed']['n']} confirmed by the judge; receipt {nq['receipt']}")
    d = body["decision"]
    print(f"withdrawn from wrong {d['withdrawn_from_wrong']}, from right {d['withdrawn_from_right']}; grounded "
          f"precision {d['grounded_precision_lexical']} -> {d['grounded_precision_judged']}; chosen: {d['chosen']}")


def main() -> None:
    args = decision_args(__doc__, N_QUESTIONS, "the first N tune-half questions")
    if args.compare_only:
        return compare_again("grounding_judge", decide, show)
    squad = tune_questions(args.limit)
    holdout = (REPO / "goldsets" / "general" / "holdout.jsonl").read_text().splitlines()
    nq = [json.loads(line) for line in holdout if line.strip()][:N_ELSEWHERE]
    cond = conditions(args.note)
    body: dict[str, Any] = {"questions": "first tune-half SQuAD questions of docs/demo_corpus"}
    with tempfile.TemporaryDirectory(prefix="sme-bench-judge-") as tmp:
        for name, items in (("judge", squad), ("nq_open", nq)):
            goldset = Path(tmp) / f"{name}.jsonl"
            goldset.write_text("".join(json.dumps(i) + "\n" for i in items))
            report, answers = eval_goldset("general", goldset, SME_GENERAL_JUDGE_GROUNDING="true")
            body[name] = tally(answers) | {"receipt": report.get("receipt")}
            if name == "judge":
                body["receipt"] = report.get("receipt")
                body["decision"] = decide(body)
                show(body)
    body["nq_open"]["questions"] = f"first {len(nq)} NQ-open questions of goldsets/general/holdout.jsonl"
    body["conditions"] = finish(cond)
    write_result("grounding_judge", body)
    show(body)


if __name__ == "__main__":
    sys.exit(main())
