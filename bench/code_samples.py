"""Repairs or fresh samples: what the code expert should spend its calls on once its code fails the question's test.

Today a code question with a test goes: write (greedy), run the test in the sandbox; on a failure repair up to
twice (the failed assert shown), stopping when a repair changes nothing the test can see; then one fresh write at
temperature 0.7. On the code holdout (eval-code-holdout-20261202T091725Z.json) 41 of 47 misses still failed the
shown test after all of that: the repairs of a 1.5B model mostly stall. Studies of self-repair with small models
(Olausson et al. 2023, "Is Self-Repair a Silver Bullet for Code Generation?") found fresh samples worth as much or
more for the same budget. This bench measures it on the code DEV split, asked exactly as the gold set asks
(task text and its first assert).

Each item runs once: the shipped expert's own flow (write, repairs, its alternative = sample 1), then, when the
write failed the shown test, further samples at temperature 0.7 up to sample 4 (sample 1 too, if the repairs
passed and the expert did not take it). Every version is scored against ALL the gold asserts (the shown one is
the first). Repairs build on the write and samples are independent of both, so every policy below is read off
this one run: its steps are tried in order and it stops at the first version that passes the shown test; the
version returned passes most shown tests (the earliest on a tie); its seconds are those of the versions it made.

- ``write only`` (1 call);
- ``2 repairs, 1 sample`` (today, at most 4 calls);
- ``1 repair, 2 samples`` (at most 4);
- ``3 samples`` (at most 4);
- ``4 samples`` (at most 5; reported, not eligible: it spends more than today's budget);
- ``2 repairs, 4 samples`` (at most 7; reported, not eligible).

The rule, fixed before the run: among the policies of at most 4 calls, the one with the most gold passes (fewer
mean seconds on a tie) replaces today's only if it passes at least 2 more items than today's; otherwise today's
policy stays. The holdout split is never used here.

Usage:
    .venv/bin/python bench/code_samples.py [--n 50] [--threads 2] [--note "..."]
    .venv/bin/python bench/code_samples.py --compare-only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from common import REPO, RESULTS, conditions, finish, policy_figures, print_table, uncached_local_lm, write_result

SAMPLES = 4
POLICIES: dict[str, list[str]] = {
    "write only": ["write"],
    "2 repairs, 1 sample": ["write", "repair 1", "repair 2", "sample 1"],
    "1 repair, 2 samples": ["write", "repair 1", "sample 1", "sample 2"],
    "3 samples": ["write", "sample 1", "sample 2", "sample 3"],
    "4 samples": ["write", "sample 1", "sample 2", "sample 3", "sample 4"],
    "2 repairs, 4 samples": ["write", "repair 1", "repair 2", "sample 1", "sample 2", "sample 3", "sample 4"],
}
TODAY = "2 repairs, 1 sample"
ELIGIBLE_CALLS = 4
MARGIN = 2
RULE = (f"among policies of at most {ELIGIBLE_CALLS} calls, the most gold passes (fewer mean seconds on a tie) "
        f"replaces '{TODAY}' only with at least {MARGIN} more passes")


def policy_outcome(steps: list[str], row: dict[str, Any]) -> dict[str, Any]:
    """Gold pass, seconds and LM calls of one item under a policy, read off the run's versions."""
    versions = {v["step"]: v for v in row["versions"]}
    used: list[dict[str, Any]] = []
    for step in steps:
        version = versions.get(step)
        if version is None:  # a repair the expert did not make (the last one stalled or passed)
            continue
        used.append(version)
        if version["shown_passed"]:
            break
    best = max(used, key=lambda v: (v["shown_passed"], v["shown_n_passed"]))  # max keeps the earliest on a tie
    return {"gold_pass": best["gold_pass"], "seconds": sum(v["seconds"] for v in used), "lm_calls": len(used),
            "step": best["step"]}


def compare(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Each policy's gold passes, LM calls and seconds, and the policy the rule chooses."""
    today = [policy_outcome(POLICIES[TODAY], row)["gold_pass"] for row in rows]
    policies = {}
    for name, steps in POLICIES.items():
        outcomes = [policy_outcome(steps, row) for row in rows]
        figures = policy_figures(outcomes, today, "gold_pass")
        policies[name] = {"passed": figures.pop("right"), **figures, "max_calls": len(steps),
                          "over_60_s": sum(o["seconds"] > 60 for o in outcomes)}
    eligible = [name for name, v in policies.items() if v["max_calls"] <= ELIGIBLE_CALLS]
    best = max(eligible, key=lambda name: (policies[name]["passed"], -(policies[name]["seconds"]["mean"] or 0)))
    chosen = best if policies[best]["passed"] >= policies[TODAY]["passed"] + MARGIN else TODAY
    return policies, chosen


def print_comparison(policies: dict[str, Any], chosen: str) -> None:
    print_table(["policy", "calls ≤", "gold pass", "95% CI", "LM calls/item", "s p50", "s p95", "s max", "> 60 s",
                 "only this / only today (p)"], [
        [name, v["max_calls"], f"{v['passed']}/{v['n']}", v["ci95"], v["lm_calls_mean"], v["seconds"]["p50"],
         v["seconds"]["p95"], v["seconds"]["max"], v["over_60_s"],
         f"{v['vs_today']['only_this']} / {v['vs_today']['only_today']} ({v['vs_today']['mcnemar_p']})"]
        for name, v in policies.items()])
    print(f"\nchosen by the rule: {chosen}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="first N items of the dev split")
    parser.add_argument("--threads", type=int, default=2, help="llama-server -t (one server, no adaptive pair)")
    parser.add_argument("--note", default="", help="recorded with the result")
    parser.add_argument("--out", default="code_samples", help="result name under bench/results")
    parser.add_argument("--compare-only", action="store_true",
                        help="recompute the policy table of bench/results/<out>.json from its items; no LM")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.compare_only:
        result = json.loads((RESULTS / f"{args.out}.json").read_text())
        result["policies"], result["chosen"] = compare(result["items"])
        result["setup"]["rule"] = RULE
        write_result(args.out, result)
        print_comparison(result["policies"], result["chosen"])
        return

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from sme_mcp.experts.adapter import lm_context
    from sme_mcp.experts.code_expert import ALTERNATIVE_TEMPERATURE, VerifiedCodeExpert, tests_from_question
    from sme_mcp.optimize.goldsets import goldset_path, load_goldset
    from sme_mcp.optimize.metrics import code_passes

    class RecordingExpert(VerifiedCodeExpert):
        """The shipped expert, recording every version it makes (None for a reply that did not parse)."""

        def _try(self, kind, predictor, tests, **kwargs):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            attempt = super()._try(kind, predictor, tests, **kwargs)
            self.record.append((kind, attempt, time.monotonic() - started))
            return attempt

    cond = conditions(args.note or f"first {args.n} code dev items; -t {args.threads}; idle")
    rows: list[dict[str, Any]] = []
    with uncached_local_lm("code", args.threads, "code-samples") as (settings, lm, server):
        items = load_goldset(goldset_path(settings.goldsets_dir, "code", "dev"), limit=args.n)
        for i, item in enumerate(items, 1):
            expert = RecordingExpert(repair_attempts=2, alternatives=1, reasoning=settings.code_reasoning)
            expert.record = []
            tests = tests_from_question(item.question)
            started = time.monotonic()
            with lm_context(lm):
                try:
                    expert(question=item.question)
                except Exception as exc:  # recorded, the run goes on
                    print(f"  {item.id}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                record = list(expert.record)
                write = record[0][1] if record else None
                if write is None or write.run is None or not write.run.passed:
                    taken = sum(kind == "alternative" for kind, _, _ in record)
                    for rollout in range(taken + 1, SAMPLES + 1):
                        expert._try("alternative", expert.write, tests, question=item.question,
                                    config={"temperature": ALTERNATIVE_TEMPERATURE, "rollout_id": rollout})
                    record = list(expert.record)
            versions, repairs, samples = [], 0, 0
            for kind, attempt, seconds in record:
                if kind == "repair":
                    repairs += 1
                    step = f"repair {repairs}"
                elif kind == "alternative":
                    samples += 1
                    step = f"sample {samples}"
                else:
                    step = "write"
                code = attempt.code if attempt is not None else ""
                run = attempt.run if attempt is not None else None
                gold, detail = code_passes(code, item.tests, item.setup) if code else (False, "no code")
                versions.append({
                    "step": step, "seconds": round(seconds, 2), "gold_pass": gold,
                    "gold_detail": None if gold else str(detail)[:200],
                    "shown_passed": bool(run and run.passed), "shown_n_passed": run.n_passed if run else -1,
                    "parsed": attempt is not None, "code": code,
                })
            row = {"id": item.id, "seconds": round(time.monotonic() - started, 2), "versions": versions}
            rows.append(row)
            print(f"[{i}/{len(items)}] {item.id}: "
                  f"{[(v['step'], v['shown_passed'], v['gold_pass']) for v in versions]} {row['seconds']:.0f} s",
                  flush=True)

    policies, chosen = compare(rows)
    result = {
        "conditions": finish(cond),
        "setup": {"split": "dev", "n": len(rows), "threads": args.threads,
                  "model": server.model_path.name if server.model_path else None,
                  "reasoning": settings.code_reasoning, "temperature": ALTERNATIVE_TEMPERATURE, "samples": SAMPLES,
                  "lm_cache": False, "question": "the gold question: MBPP task text and its first assert",
                  "scoring": "optimize.metrics.code_passes of each version against all gold tests", "rule": RULE},
        "policies": policies, "chosen": chosen, "items": rows,
    }
    path = write_result(args.out, result)
    print()
    print_comparison(policies, chosen)
    print(f"load average before {cond['loadavg_before']}, after {result['conditions']['loadavg_after']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
