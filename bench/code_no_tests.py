"""How much of the code expert's work pays off when the question gives no tests, on the code DEV split.

A user rarely writes an ``assert``: "write a function that reverses the words in a sentence". The expert then
writes the code, writes 2-3 checks of its own, and repairs the code (twice at most) and samples an alternative
while those self-written checks fail: up to 4 LM calls and 60-90 s on 2 cores (bench/user_questions.py), though
the checks are as fallible as the code. This bench measures what each step is worth.

Each dev item's question is rewritten as a user would ask it: the MBPP task text, the example assert removed, and
"The function should be named NAME." (the gold tests call it). The expert runs once per item with the full
budget (2 repairs, one alternative), every attempt recorded: its code, seconds, tokens and self-check results.
Each attempt's code is then scored against ALL the gold tests (never shown to the model). Because the calls are
made in order and all but the alternative are greedy, the cheaper policies are prefixes of this one run:

- ``write only``: the first write, no checks (1 call);
- ``checks, no repair``: write + checks, the write returned as it is, the checks only reported (2 calls);
- ``checks, 1 repair``: + at most one repair, no alternative; the version passing most checks is returned;
- ``full``: today's policy (2 repairs, then an alternative at temperature 0.7).

The rule to choose, fixed before the run: the cheapest policy (fewest LM calls per item on average) whose gold
pass count is at most one item below the full policy's becomes the policy for questions without tests.
``write only`` is reported but not eligible: an answer to a question without tests must still say what its own
checks showed (issue #13). The holdout split is never used here.

A second run can try another expert on the same items, e.g. without reasoning (``--reasoning off``), with its
budget cut to the policies worth comparing (``--max-calls 2``: write and checks only), paired item by item with
an earlier result (``--paired-with code_no_tests``). Rule for that run, fixed before it: the code expert writes
without reasoning for questions without tests if, under the chosen policy (write and checks), it passes at least
as many items as with reasoning less one.

Usage:
    .venv/bin/python bench/code_no_tests.py [--n 50] [--threads 2] [--note "..."]
    .venv/bin/python bench/code_no_tests.py --reasoning off --max-calls 2 --out code_no_tests_predict \
        --paired-with code_no_tests
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any

from common import REPO, RESULTS, conditions, finish, print_table, summary, uncached_local_lm, write_result

POLICIES = ("write only", "checks, no repair", "checks, 1 repair", "full")
POLICY_CALLS = {"write only": 1, "checks, no repair": 2, "checks, 1 repair": 3, "full": 4}
RULE = "cheapest policy with checks (mean LM calls) within one gold pass of the full policy"


def as_user_question(question: str, tests: list[str]) -> str | None:
    """The MBPP question without its example test, naming the function the gold tests call; None without one."""
    match = re.search(r"assert\s+([A-Za-z_]\w*)\s*\(", tests[0]) if tests else None
    if match is None:
        return None
    task = re.split(r"\n\s*Your function must pass", question)[0].strip()
    return f"{task}\nThe function should be named {match.group(1)}."


def returned(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """The attempt the expert returns among these: most self-checks passed, the earliest on a tie."""
    def score(a: dict[str, Any]) -> tuple[bool, int]:
        return (False, -1) if a["checks_total"] is None else (a["checks_passed"] == a["checks_total"],
                                                               a["checks_passed"])
    return max(attempts, key=score)  # max keeps the earliest on a tie


def policy_outcome(policy: str, row: dict[str, Any]) -> dict[str, Any]:
    """Gold pass, seconds and LM calls of one item under a policy, read off the full run's attempts."""
    attempts, checks_s = row["attempts"], row["checks_seconds"]
    write = attempts[0]
    if policy == "write only":
        return {"gold_pass": write["gold_pass"], "seconds": write["seconds"], "lm_calls": 1}
    with_checks = write["seconds"] + (checks_s or 0.0)
    calls = 1 + (checks_s is not None)
    if policy == "checks, no repair":
        return {"gold_pass": write["gold_pass"], "seconds": with_checks, "lm_calls": calls}
    if policy == "checks, 1 repair":
        used = [write, *[a for a in attempts if a["kind"] == "repair"][:1]]
        best = returned(used)
        return {"gold_pass": best["gold_pass"], "seconds": with_checks + sum(a["seconds"] for a in used[1:]),
                "lm_calls": calls + len(used) - 1}
    best = returned(attempts)
    return {"gold_pass": best["gold_pass"], "seconds": row["seconds"], "lm_calls": row["lm_calls"]}


def compare(rows: list[dict[str, Any]], max_calls: int = 4) -> tuple[dict[str, Any], str | None]:
    """Each policy's gold passes, LM calls and seconds over the items, and the policy the rule chooses (None when
    the run's budget was cut, so the full policy was not run)."""
    from sme_mcp.optimize.stats import wilson_interval

    policies = {}
    for policy in [p for p in POLICIES if POLICY_CALLS[p] <= max_calls]:
        outcomes = [policy_outcome(policy, row) for row in rows]
        k, n = sum(o["gold_pass"] for o in outcomes), len(outcomes)
        low, high = wilson_interval(k, n)
        policies[policy] = {
            "passed": k, "n": n, "ci95": [round(low, 3), round(high, 3)],
            "lm_calls_mean": round(sum(o["lm_calls"] for o in outcomes) / max(n, 1), 2),
            "seconds": summary([o["seconds"] for o in outcomes]),
            "over_60_s": sum(o["seconds"] > 60 for o in outcomes),
        }
    if "full" not in policies:
        return policies, None
    full = policies["full"]["passed"]
    eligible = [p for p in POLICIES[1:] if policies[p]["passed"] >= full - 1]  # checks are required
    return policies, min(eligible, key=lambda p: policies[p]["lm_calls_mean"])


def paired(rows: list[dict[str, Any]], other: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    """Items one run's policy passes and the other's does not, both ways, with McNemar's exact p."""
    from sme_mcp.optimize.stats import mcnemar_exact

    theirs = {row["id"]: policy_outcome(policy, row)["gold_pass"] for row in other}
    ours = {row["id"]: policy_outcome(policy, row)["gold_pass"] for row in rows if row["id"] in theirs}
    ids = sorted(ours)
    _, _, p = mcnemar_exact([theirs[i] for i in ids], [ours[i] for i in ids])
    return {"policy": policy, "n": len(ids), "only_this_run": [i for i in ids if ours[i] and not theirs[i]],
            "only_other_run": [i for i in ids if theirs[i] and not ours[i]], "mcnemar_p": round(p, 4)}


def print_comparison(policies: dict[str, Any], chosen: str | None) -> None:
    print_table(["policy", "gold pass", "95% CI", "LM calls/item", "s p50", "s p95", "s max", "> 60 s"], [
        [p, f"{v['passed']}/{v['n']}", v["ci95"], v["lm_calls_mean"], v["seconds"]["p50"], v["seconds"]["p95"],
         v["seconds"]["max"], v["over_60_s"]] for p, v in policies.items()])
    if chosen:
        print(f"\nchosen by the rule: {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="first N items of the dev split")
    parser.add_argument("--threads", type=int, default=2, help="llama-server -t (one server, no adaptive pair)")
    parser.add_argument("--reasoning", choices=("on", "off"), help="the expert's reasoning (default: the setting's)")
    parser.add_argument("--max-calls", type=int, default=4, choices=(1, 2, 3, 4),
                        help="the expert's LM-call budget; only the policies within it are compared")
    parser.add_argument("--paired-with", help="an earlier result under bench/results to pair item by item")
    parser.add_argument("--note", default="", help="recorded with the result")
    parser.add_argument("--out", default="code_no_tests", help="result name under bench/results")
    parser.add_argument("--compare-only", action="store_true",
                        help="recompute the policy table of bench/results/<out>.json from its items; no LM")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.compare_only:
        result = json.loads((RESULTS / f"{args.out}.json").read_text())
        result["policies"], result["chosen"] = compare(result["items"], result["setup"].get("max_calls", 4))
        result["setup"]["rule"] = RULE
        write_result(args.out, result)
        print_comparison(result["policies"], result["chosen"])
        return

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    from sme_mcp.experts.adapter import lm_context
    from sme_mcp.experts.code_expert import VerifiedCodeExpert
    from sme_mcp.optimize.goldsets import goldset_path, load_goldset
    from sme_mcp.optimize.metrics import code_passes

    class RecordingExpert(VerifiedCodeExpert):
        """The shipped expert, recording each attempt's code and time and the checks call's time."""

        def _attempt(self, kind, predictor, tests, **kwargs):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            attempt = super()._attempt(kind, predictor, tests, **kwargs)
            self.record.append((attempt, time.monotonic() - started))
            return attempt

        def _call(self, predictor, **kwargs):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            try:
                return super()._call(predictor, **kwargs)
            finally:
                if predictor is self.write_checks:
                    self.checks_seconds = time.monotonic() - started

    cond = conditions(args.note or f"first {args.n} code dev items asked without tests; -t {args.threads}")
    rows: list[dict[str, Any]] = []
    with uncached_local_lm("code", args.threads, "code-no-tests") as (settings, lm, server):
        reasoning = settings.code_reasoning if args.reasoning is None else args.reasoning == "on"
        items = load_goldset(goldset_path(settings.goldsets_dir, "code", "dev"), limit=args.n)
        for i, item in enumerate(items, 1):
            question = as_user_question(item.question, item.tests)
            if question is None:
                continue
            expert = RecordingExpert(repair_attempts=settings.code_repair_attempts, reasoning=reasoning,
                                     max_lm_calls=args.max_calls, max_lm_calls_self_checked=args.max_calls)
            expert.record, expert.checks_seconds = [], None
            started, history = time.monotonic(), len(lm.history)
            error = None
            try:
                with lm_context(lm):
                    pred = expert(question=question)
            except Exception as exc:  # a failed item is recorded as such, the run goes on
                pred, error = None, f"{type(exc).__name__}: {str(exc)[:300]}"
            seconds = time.monotonic() - started
            attempts = []
            for attempt, attempt_s in expert.record:
                passed, detail = code_passes(attempt.code, item.tests, item.setup)
                attempts.append({
                    "kind": attempt.kind, "seconds": round(attempt_s, 2), "gold_pass": passed,
                    "gold_detail": None if passed else detail[:200],
                    "checks_passed": attempt.run.n_passed if attempt.run else None,
                    "checks_total": attempt.run.total if attempt.run else None, "code": attempt.code,
                })
            usage = [e.get("usage") or {} for e in lm.history[history:]]
            row = {
                "id": item.id, "question": question, "seconds": round(seconds, 2), "error": error,
                "lm_calls": getattr(pred, "lm_calls", len(usage)),
                "completion_tokens": sum(u.get("completion_tokens") or 0 for u in usage),
                "checks_seconds": None if expert.checks_seconds is None else round(expert.checks_seconds, 2),
                "verification": pred.verification.outcome if pred is not None else None,
                "attempts": attempts,
            }
            if not attempts:  # nothing parsed at all: every policy misses it at the time it took
                row["attempts"] = [{"kind": "write", "seconds": row["seconds"], "gold_pass": False,
                                    "gold_detail": error, "checks_passed": None, "checks_total": None, "code": ""}]
            rows.append(row)
            outcome = policy_outcome("full", row)
            print(f"[{i}/{len(items)}] {item.id}: {'PASS' if outcome['gold_pass'] else 'fail'} "
                  f"{[(a['kind'], a['gold_pass'], a['checks_passed'], a['checks_total']) for a in attempts]} "
                  f"{row['lm_calls']} calls {row['seconds']:.1f} s", flush=True)

    policies, chosen = compare(rows, args.max_calls)
    result = {
        "conditions": finish(cond),
        "setup": {"split": "dev", "n": len(rows), "threads": args.threads, "model": server.model_path.name
                  if server.model_path else None, "repair_attempts": settings.code_repair_attempts,
                  "reasoning": reasoning, "max_calls": args.max_calls, "lm_cache": False,
                  "question": "MBPP task text, example assert removed, 'The function should be named NAME.'",
                  "scoring": "optimize.metrics.code_passes of each attempt against all gold tests",
                  "rule": RULE},
        "policies": policies, "chosen": chosen, "items": rows,
    }
    if args.paired_with:
        other = json.loads((RESULTS / f"{args.paired_with}.json").read_text())
        result["paired"] = {"with": args.paired_with, "reasoning_there": other["setup"].get("reasoning"),
                            **paired(rows, other["items"], "checks, no repair")}
    path = write_result(args.out, result)
    print()
    print_comparison(policies, chosen)
    if "paired" in result:
        print(f"paired with {args.paired_with} ({result['paired']['policy']}): {result['paired']}")
    print(f"load average before {cond['loadavg_before']}, after {result['conditions']['loadavg_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
