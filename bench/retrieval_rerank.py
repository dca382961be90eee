"""Is the passage that answers a question among the k the general expert shows? Recall@k against k, with and
without a lexical reranking and a rewritten query (a script, not a test; no LM call).

Each SQuAD question of the demo corpus (docs/demo_corpus/questions.jsonl) is searched in the data dir's
'general' collection, as the general expert searches it (the service's hybrid search, its similarity
floor), with a pool of `--pool` hits. A hit *supports* the question when it comes from the question's
article and holds one of its gold answers. Reported, per way of ordering the pool, the share of
questions with a supporting hit among the first k shown, for k = 1..5:
- `hybrid`: the search's own order (what the expert shows today);
- `lexical`: the pool reordered by `experts.grounding.passage_support` (how much of the question the
  passage's best sentence covers, question words weighted by rarity), ties kept in search order;
- `fused`: reciprocal-rank fusion of the two orders;
and each of these with the query rewritten to its content words (question and stop words dropped)
before the search. The questions are split in two halves by a hash of their id, as in
bench/grounding.py: a way of ordering is chosen on `tune` and reported on `report`.

Usage:
    .venv/bin/python bench/retrieval_rerank.py [--pool 10] [--out bench/results/retrieval_rerank.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, conditions, finish, summary, write_json
from grounding import half

KS = (1, 2, 3, 4, 5)


def supports(hit: Any, title: str, answers: list[str]) -> bool:
    """Whether a hit comes from the question's article and holds one of its answers."""
    from sme_mcp.experts.general_rag import _field

    same_article = _field(hit, "title").replace(" ", "_").lower().startswith(title.lower())
    return same_article and any(a.lower() in _field(hit, "text").lower() for a in answers)


def orders(question: str, hits: list[Any]) -> dict[str, list[int]]:
    """The pool's indices in each order: the search's, by lexical support, and the two fused (the order
    `retrieve_context` uses when the pool is larger than k)."""
    from sme_mcp.experts.general_rag import _field
    from sme_mcp.experts.grounding import passage_support
    from sme_mcp.experts.rerank import fused_order

    context = [f"{_field(h, 'title')}: {_field(h, 'text')}" for h in hits]
    support = passage_support(question, context)
    hybrid = list(range(len(hits)))
    lexical = sorted(hybrid, key=lambda i: (-support[i], i))
    return {"hybrid": hybrid, "lexical": lexical, "fused": fused_order(question, context)}


def rewrite(question: str) -> str:
    """The question's content words only: "What is the capital of Kenya?" -> "capital kenya"."""
    from sme_mcp.experts.grounding import _QUESTION_WORDS, _content

    words = [w for w in _content(question) if w not in _QUESTION_WORDS]
    return " ".join(words) or question


def run(pool: int, out: Path) -> dict[str, Any]:
    from sme_mcp.config.settings import Settings
    from sme_mcp.experts.general_rag import _similarity
    from sme_mcp.experts.service import ExpertService

    cond = conditions(f"no LM; SQuAD questions of the demo corpus against the data dir's general collection; "
                      f"pool {pool}")
    settings = Settings()
    floor = settings.retrieval_min_similarity
    questions = [json.loads(x) for x in (REPO / "docs/demo_corpus/questions.jsonl").read_text().splitlines()
                 if x.strip()]
    found: dict[str, dict[str, list[int]]] = {}  # variant -> half -> rank of the first supporting hit (or -1)
    seconds: dict[str, list[float]] = {}
    service = ExpertService(settings, local=None)
    try:
        service.search_documents("warm up the embedder", 1)
        for item in questions:
            part = half(item["id"])
            for query_name, query in (("question", item["question"]), ("rewritten", rewrite(item["question"]))):
                started = time.perf_counter()
                hits = [h for h in service.search_documents(query, pool)
                        if floor is None or _similarity(h) is None or _similarity(h) >= floor]
                searched = time.perf_counter() - started
                started = time.perf_counter()
                ranked = orders(item["question"], hits)
                reranked = time.perf_counter() - started
                for order, indices in ranked.items():
                    name = order if query_name == "question" else f"{order}+rewritten"
                    rank = next((r for r, i in enumerate(indices) if supports(hits[i], item["title"],
                                                                              item["answers"])), -1)
                    found.setdefault(name, {"tune": [], "report": []})[part].append(rank)
                    seconds.setdefault(name, []).append(searched + (reranked if order != "hybrid" else 0.0))
    finally:
        service.close()

    def recall(ranks: list[int]) -> dict[str, float]:
        return {f"recall@{k}": round(sum(0 <= r < k for r in ranks) / len(ranks), 3) for k in KS} | {
            f"recall@pool{pool}": round(sum(r >= 0 for r in ranks) / len(ranks), 3)}

    variants = {name: {part: {"n": len(ranks), **recall(ranks)} for part, ranks in halves.items()}
                | {"seconds_per_question": summary(seconds[name], 4)} for name, halves in found.items()}
    k = settings.retrieval_k
    chosen = max(variants, key=lambda name: (variants[name]["tune"][f"recall@{k}"], name == "hybrid"))
    result = {"pool": pool, "k": k, "min_similarity": floor, "questions": len(questions), "variants": variants,
              "chosen_on_tune": {"variant": chosen, "by": f"recall@{k} on the tune half (ties: the search's own order)",
                                 "report": variants[chosen]["report"], "hybrid_report": variants["hybrid"]["report"]}}
    for name, v in variants.items():
        row = "  ".join(f"@{k} {v['tune'][f'recall@{k}']:.3f}/{v['report'][f'recall@{k}']:.3f}" for k in KS)
        print(f"{name:20} tune/report {row}", file=sys.stderr)
    print(f"chosen on tune (recall@{k}): {chosen}", file=sys.stderr)
    result["conditions"] = finish(cond)
    write_json(out, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=10, help="hits searched before reordering")
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval_rerank.json")
    args = parser.parse_args()
    run(args.pool, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
