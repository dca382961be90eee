"""Where to cut off retrieved passages for the general expert (a script, not a test).

The general expert answers NQ-open questions (its gold set) that the demo corpus mostly does not
cover, and SQuAD questions that it does. A 1.5B model shown off-topic passages answers worse, so
passages whose query cosine is below `retrieval_min_similarity` are dropped. This measures, over an
index of docs/demo_corpus/articles, the cosine of the top hit for SQuAD questions (in-corpus) and for
NQ-open train+dev questions (mostly out of corpus; the holdout is not looked at), and for each
threshold the share of each kept.

Usage:
    .venv/bin/python bench/retrieval_gate.py [--n 200] [--out bench/results/retrieval_gate.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from sme_mcp.tools.doc_index import DocumentIndex
from sme_mcp.tools.embedder import EmbedderSettings, LocalEmbedder

REPO = Path(__file__).resolve().parent.parent
THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55)


def questions(path: Path, n: int, step: int = 1) -> list[str]:
    lines = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[::step][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="questions per set")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrieval_gate.json")
    args = parser.parse_args()

    squad = questions(REPO / "docs" / "demo_corpus" / "questions.jsonl", args.n, step=5)
    goldsets = REPO / "goldsets" / "general"
    nq = (questions(goldsets / "train.jsonl", args.n) + questions(goldsets / "dev.jsonl", args.n))[: args.n]
    embedder = LocalEmbedder(EmbedderSettings(threads=1))
    with tempfile.TemporaryDirectory(prefix="sme-mcp-gate-bench-") as tmp:
        index = DocumentIndex(Path(tmp) / "db", embedder)
        report = index.ingest("demo", [REPO / "docs" / "demo_corpus" / "articles"])
        print(f"indexed {report.documents} articles as {report.chunks} chunks", file=sys.stderr)
        top = {name: [index.search("demo", q, k=1, mode="vector")[0].similarity or 0.0 for q in qs]
               for name, qs in (("squad", squad), ("nq_open", nq))}
    results = {
        "n": {name: len(v) for name, v in top.items()},
        "median_top_cosine": {name: round(statistics.median(v), 4) for name, v in top.items()},
        "kept": [{"threshold": t, **{name: round(sum(x >= t for x in v) / len(v), 4) for name, v in top.items()}}
                 for t in THRESHOLDS],
    }
    print(f"{'threshold':>9}  {'SQuAD kept':>10}  {'NQ-open kept':>12}")
    for row in results["kept"]:
        print(f"{row['threshold']:>9}  {row['squad']:>10.1%}  {row['nq_open']:>12.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
