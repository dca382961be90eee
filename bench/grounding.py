"""How the general expert's grounding check labels right answers, on questions the documents answer and on
questions they do not (a script, not a test; no LM call).

Each question is retrieved exactly as the general expert retrieves it (the service's search over the
'general' collection, its k and similarity floor), and the check (experts/grounding.py) is run on the
*gold* answer, as if the model had answered right. So this measures the check and the retrieval, not
the model:
- SQuAD questions of the demo corpus (docs/demo_corpus/questions.jsonl): the documents hold the
  answer, so a right answer should come out `grounded`;
- NQ-open questions of the general dev split: the demo corpus rarely answers them, so a right answer
  should come out `not_in_documents` or `not_grounded`, i.e. marked as the model's own knowledge.
An NQ-open answer labelled `grounded` is a false "from your documents" only when the passage does not
in fact say it; this script counts such labels, it does not judge them.

Usage:
    .venv/bin/python bench/grounding.py [--out bench/results/grounding.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, conditions, finish, summary

OUTCOMES = ("grounded", "partial", "not_grounded", "not_in_documents", "unchecked")


def run(out: Path) -> dict[str, Any]:
    from sme_mcp.config.settings import Settings
    from sme_mcp.experts.general_rag import retrieve_context
    from sme_mcp.experts.grounding import check_grounding
    from sme_mcp.experts.service import ExpertService

    cond = conditions("no LM; the gold answer stands for a right answer; demo corpus index of the data dir")
    settings = Settings()
    service = ExpertService(settings, local=None)
    sets = {
        "squad_demo": [json.loads(x) for x in (REPO / "docs/demo_corpus/questions.jsonl").read_text().splitlines()
                       if x.strip()],
        "nq_open_dev": [json.loads(x) for x in (REPO / "goldsets/general/dev.jsonl").read_text().splitlines()
                        if x.strip()],
    }
    result: dict[str, Any] = {"k": settings.retrieval_k, "min_similarity": settings.retrieval_min_similarity,
                              "sets": {}}
    try:
        service.search_documents("warm up the embedder", 1)
        for name, items in sets.items():
            counts: Counter[str] = Counter()
            seconds: list[float] = []
            examples: list[dict[str, Any]] = []
            for item in items:
                gold = (item.get("answers") or [item.get("answer")])[0]
                started = time.perf_counter()
                context, _ = retrieve_context(service.search_documents, item["question"], settings.retrieval_k,
                                              settings.retrieval_min_similarity)
                check = check_grounding(str(gold), context, item["question"])
                seconds.append(time.perf_counter() - started)
                counts[check["outcome"]] += 1
                if len(examples) < 5 and (check["outcome"] == "grounded") == (name == "nq_open_dev"):
                    examples.append({"question": item["question"], "gold": gold, "outcome": check["outcome"],
                                     "details": check["details"][:3]})
            n = len(items)
            result["sets"][name] = {
                "n": n, "outcomes": {o: counts[o] for o in OUTCOMES},
                "share": {o: round(counts[o] / n, 3) for o in OUTCOMES},
                "seconds_per_question": summary(seconds, 4), "examples_against_expectation": examples,
            }
            shares = ", ".join(f"{o} {counts[o]}" for o in OUTCOMES if counts[o])
            print(f"{name}: {n} questions: {shares}", file=sys.stderr)
    finally:
        service.close()
    result["conditions"] = finish(cond)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "grounding.json")
    run(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
