"""Learning from use: does rating misroutes fix routing beyond the rated questions themselves?

90 questions typed the way people type them (`bench/data/routing_feedback.jsonl`, 30 per domain,
20 pairs of paraphrases of the same need). On a fresh data dir and receipts dir, with no LM backend:

1. Every question goes through the router's nearest-neighbour vote. A decided vote is routed with
   `ExpertService.route` (it decides without the LM); an undecided one would go to the LM stage, which
   this benchmark never calls: it is counted as "goes to the LM", and its vote label's correctness is
   only a side figure.
2. The questions split deterministically in two: "rated" (the lower-id member of every pair, and every
   other unpaired question by id) and "unseen" (the rest), so every pair has one phrasing rated and one
   unseen.
3. Every rated question the vote decided wrongly is logged as `ask_logged` logs a routed answer and
   rated with `rate_answer(..., "wrong", domain=<right domain>)`; each rating refits the router's first
   stage, gated on the router dev split (optimize/router_refit.py). Each rating is timed.
4. Every question is routed again. The unseen half is the honest figure (and the control: unseen
   questions right before and not right after are regressions, listed by name).

Usage:
    .venv/bin/python bench/learning_from_use.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, conditions, finish, print_table, write_result

from sme_mcp.config.settings import DOMAINS, LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService
from sme_mcp.optimize.feedback import rate_answer

DATA = REPO / "bench" / "data" / "routing_feedback.jsonl"


class LMCalled(RuntimeError):
    """The benchmark reached the router's LM stage, which it must never call."""


def load_questions(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(rows, key=lambda r: r["id"])


def split(rows: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(rated ids, unseen ids): the lower-id member of each pair, and every other unpaired question."""
    rated: set[str] = set()
    pairs_seen: set[str] = set()
    unpaired = 0
    for row in rows:
        if row.get("pair"):
            if row["pair"] not in pairs_seen:
                pairs_seen.add(row["pair"])
                rated.add(row["id"])
        else:
            if unpaired % 2 == 0:
                rated.add(row["id"])
            unpaired += 1
    return rated, {r["id"] for r in rows} - rated


def no_backend_service(root: Path) -> ExpertService:
    settings = Settings()
    settings.local.enabled = False
    chain = RoleSettings(chain=[LMSpec(), LMSpec(model="openai/gpt-4o-mini", api_key_env="SME_BENCH_MISSING_KEY")])
    for role in ("router", *DOMAINS):  # no backend answers: no local server, no cloud key
        setattr(settings, role, chain)
    settings.data_dir = root / "data"
    settings.receipts_dir = root / "receipts"
    # A fresh cache too (the router's embedding matrices), sharing only the assembled MiniLM model.
    shared_model = settings.cache_dir / "embeddings"
    settings.cache_dir = root / "cache"
    settings.cache_dir.mkdir(parents=True)
    if shared_model.is_dir():
        (settings.cache_dir / "embeddings").symlink_to(shared_model, target_is_directory=True)
    service = ExpertService(settings, local=None)

    def refuse(*_: Any, **__: Any) -> Any:
        raise LMCalled("the benchmark reached the router's LM stage")

    service.chains["router"].run = refuse  # type: ignore[method-assign]  # a guard: never an LM call
    return service


def route_all(service: ExpertService, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each question's routing now: decided by the vote (through `service.route`), or bound for the LM."""
    out = {}
    router = service.module("router")
    for row in rows:
        question, gold = row["question"], row["domain"]
        vote = router.nearest.vote(question)
        if vote is not None and vote.decided and vote.label in DOMAINS:
            domain, confidence, routed_by = service.route(question)
            assert routed_by == "nearest_neighbours", (question, routed_by)
            state = "right" if domain == gold else "wrong"
            out[row["id"]] = {"state": state, "domain": domain, "routed_by": routed_by, "share": confidence,
                              "similarity": vote.similarity, "decided": True}
        else:
            out[row["id"]] = {"state": "lm", "domain": None, "routed_by": "goes to the LM (not called)",
                              "vote_label": vote.label if vote else None,
                              "vote_label_right": bool(vote and vote.label == gold),
                              "share": vote.share if vote else None,
                              "similarity": vote.similarity if vote else None, "decided": False}
    return out


def counts(routes: dict[str, dict[str, Any]], ids: set[str]) -> dict[str, int]:
    states = [routes[i]["state"] for i in ids]
    return {"n": len(ids), "decided_right": states.count("right"), "decided_wrong": states.count("wrong"),
            "goes_to_lm": states.count("lm"),
            "lm_vote_label_right": sum(1 for i in ids if routes[i]["state"] == "lm" and routes[i]["vote_label_right"])}


def transition(before: str, after: str) -> str:
    if before == after:
        return "unchanged"
    if after == "right":
        return "fixed"
    if before == "right":
        return "broken"
    return "changed, still not right"  # wrong -> LM or LM -> wrong


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rows = load_questions(DATA)
    by_id = {r["id"]: r for r in rows}
    rated, unseen = split(rows)
    cond = conditions(f"{len(rows)} questions ({len(rated)} rated, {len(unseen)} unseen), fresh data and receipts "
                      "dirs, no LM backend (the router's LM stage is never called), MiniLM embeddings on CPU; "
                      "shared 2-core machine")
    with tempfile.TemporaryDirectory(prefix="sme-bench-learning-") as tmp:
        service = no_backend_service(Path(tmp))
        try:
            started = time.perf_counter()
            service.module("router").nearest.warm()
            warm_s = round(time.perf_counter() - started, 2)
            before = route_all(service, rows)
            ratings = []
            for row in rows:
                r = before[row["id"]]
                if row["id"] not in rated or r["state"] != "wrong":
                    continue
                entry_id = service.usage.record(question=row["question"], domain=r["domain"],
                                                routed_by="nearest_neighbours", confidence=r["share"],
                                                answer="(benchmark: not answered)", backend="local", client="mcp")
                started = time.perf_counter()
                result = rate_answer(service, entry_id, "wrong", domain=row["domain"])
                seconds = time.perf_counter() - started
                refit = result.router_refit
                ratings.append({
                    "id": row["id"], "question": row["question"], "routed_to": r["domain"], "label": row["domain"],
                    "seconds": round(seconds, 3), "promoted": bool(refit and refit.promoted),
                    "refit": refit is not None, "next_step": result.next_step,
                    "dev_before": refit.dev_before.model_dump() if refit else None,
                    "dev_after": refit.dev_after.model_dump() if refit else None,
                    "active_version": refit.active_version if refit else None,
                })
            after = route_all(service, rows)
            active = service.programs.active("router")
            active_version = active.version if active else "base"
        finally:
            service.close()

    def half(ids: set[str]) -> dict[str, Any]:
        moves: dict[str, int] = {}
        for i in ids:
            key = transition(before[i]["state"], after[i]["state"])
            moves[key] = moves.get(key, 0) + 1
        return {"before": counts(before, ids), "after": counts(after, ids), "transitions": moves}

    misrouted_pairs = []
    for pair in sorted({r["pair"] for r in rows if r.get("pair")}):
        members = [r["id"] for r in rows if r.get("pair") == pair]
        rated_id = next(i for i in members if i in rated)
        unseen_id = next(i for i in members if i in unseen)
        if before[rated_id]["state"] != "wrong":
            continue
        misrouted_pairs.append({
            "pair": pair, "rated": rated_id, "rated_question": by_id[rated_id]["question"],
            "rated_after": after[rated_id]["state"], "unseen": unseen_id,
            "unseen_question": by_id[unseen_id]["question"], "unseen_before": before[unseen_id]["state"],
            "unseen_after": after[unseen_id]["state"],
            "outcome": transition(before[unseen_id]["state"], after[unseen_id]["state"]),
        })
    pair_outcomes = {k: sum(1 for p in misrouted_pairs if p["outcome"] == k)
                     for k in ("fixed", "unchanged", "broken", "changed, still not right")}
    regressions = [{"id": i, "domain": by_id[i]["domain"], "question": by_id[i]["question"],
                    "before": before[i]["domain"], "after": after[i]["domain"] or "goes to the LM",
                    "after_state": after[i]["state"]}
                   for i in sorted(unseen) if before[i]["state"] == "right" and after[i]["state"] != "right"]
    refits = [r for r in ratings if r["refit"]]
    dev_before = refits[0]["dev_before"] if refits else None
    last = refits[-1] if refits else None
    dev_after = (last["dev_after"] if last["promoted"] else last["dev_before"]) if last else None
    seconds = [r["seconds"] for r in ratings]
    body = {
        "benchmark": "learning_from_use", "conditions": finish(cond),
        "questions": {"n": len(rows), "file": str(DATA.relative_to(REPO)),
                      "per_domain": {d: sum(1 for r in rows if r["domain"] == d) for d in DOMAINS},
                      "pairs": len({r["pair"] for r in rows if r.get("pair")}), "rated": len(rated),
                      "unseen": len(unseen)},
        "rated": half(rated), "unseen": half(unseen),
        "misrouted_pairs": {"n": len(misrouted_pairs), "outcomes": pair_outcomes, "pairs": misrouted_pairs},
        "ratings": {"n": len(ratings), "refits": len(refits), "promoted": sum(r["promoted"] for r in refits),
                    "rejected": sum(not r["promoted"] for r in refits),
                    "seconds": {"median": round(statistics.median(seconds), 3) if seconds else None,
                                "max": round(max(seconds), 3) if seconds else None},
                    "items": ratings},
        "router_dev": {"before": dev_before, "after": dev_after,
                       "accuracy_before": round(dev_before["correct"] / dev_before["n"], 4) if dev_before else None,
                       "accuracy_after": round(dev_after["correct"] / dev_after["n"], 4) if dev_after else None},
        "active_router_after": active_version,
        "warm_s": warm_s,
        "unseen_regressions": regressions,
        "per_question": [{"id": r["id"], "domain": r["domain"], "pair": r.get("pair"),
                          "half": "rated" if r["id"] in rated else "unseen", "question": r["question"],
                          "before": before[r["id"]], "after": after[r["id"]]} for r in rows],
    }

    table_rows = []
    for name in ("rated", "unseen"):
        b, a = body[name]["before"], body[name]["after"]
        table_rows.append([name, b["n"], f"{b['decided_right']} → {a['decided_right']}",
                           f"{b['decided_wrong']} → {a['decided_wrong']}", f"{b['goes_to_lm']} → {a['goes_to_lm']}",
                           f"{b['lm_vote_label_right']} → {a['lm_vote_label_right']}"])
    print_table(["half", "questions", "decided right", "decided wrong", "goes to the LM",
                 "(LM-bound whose vote label is right)"], table_rows)
    for name in ("rated", "unseen"):
        print(f"{name} transitions: {body[name]['transitions']}")
    print(f"pairs whose rated phrasing was misrouted: {len(misrouted_pairs)}; their unseen paraphrase: "
          + ", ".join(f"{k} {v}" for k, v in pair_outcomes.items()))
    for p in misrouted_pairs:
        print(f"  {p['pair']}: rated “{p['rated_question']}” ({p['rated_after']} after); unseen "
              f"“{p['unseen_question']}” {p['unseen_before']} → {p['unseen_after']}")
    if dev_before and dev_after:
        print(f"router dev vote: {dev_before['correct']}/{dev_before['n']} right, {dev_before['decided_wrong']} "
              f"decided wrongly before; {dev_after['correct']}/{dev_after['n']} right, {dev_after['decided_wrong']} "
              "decided wrongly after")
    r = body["ratings"]
    print(f"ratings: {r['n']} misroutes rated, {r['refits']} refits, {r['promoted']} promoted, {r['rejected']} "
          f"rejected; seconds per rating median {r['seconds']['median']}, max {r['seconds']['max']}")
    print(f"unseen questions right before and not right after (regressions): {len(regressions)}")
    for g in regressions:
        print(f"  {g['id']} [{g['domain']}] “{g['question']}”: {g['before']} → {g['after']}")
    print(f"wrote {write_result('learning_from_use', body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
