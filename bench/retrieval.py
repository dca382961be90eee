"""Retrieval benchmark of `DocumentIndex` on SQuAD (a script, not a test).

Quality: every SQuAD v1.1 question of the demo corpus (docs/demo_corpus, built by
scripts/build_demo_corpus.py) is asked against an index of all the corpus paragraphs, one file per
paragraph; a question counts as found at k when a chunk of its own paragraph is among the top k.
Reported for vector, full-text (BM25) and hybrid search (RRF fusion, and a linear score fusion).

Scale: index build time (chunk, embed, write, compact, FTS index), the time of re-ingesting the
unchanged files, and query latency p50/p95 per mode, at ~1k chunks (the corpus) and ~10k chunks
(the corpus copied into several folders: real text, repeated).

Usage:
    .venv/bin/python bench/retrieval.py [--copies 8] [--threads 1] [--out bench/results/retrieval.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from sme_mcp.tools.doc_index import DocumentIndex
from sme_mcp.tools.embedder import EmbedderSettings, LocalEmbedder

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "docs" / "demo_corpus"
MODES = ("vector", "fts", "hybrid", "hybrid_linear")


def load_corpus(corpus: Path) -> tuple[dict[tuple[str, int], tuple[str, str]], list[dict]]:
    """((title, paragraph index) -> (heading, text)) and the questions."""
    paragraphs = {}
    for path in sorted((corpus / "articles").glob("*.md")):
        heading, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        for i, text in enumerate(body.strip().split("\n\n")):
            paragraphs[(path.stem, i)] = (heading.removeprefix("# "), text)
    questions = [json.loads(line) for line in (corpus / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    return paragraphs, questions


def write_paragraphs(paragraphs: dict[tuple[str, int], tuple[str, str]], folder: Path,
                     copy: int = 0) -> dict[tuple[str, int], str]:
    """One Markdown file per paragraph; returns the resolved path of each.

    Copies after the first carry their number in the heading: the index skips byte-identical files
    (and search drops identical chunk texts), so exact copies would not grow it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for (stem, i), (heading, text) in paragraphs.items():
        path = folder / f"{stem}--{i:03d}.md"
        suffix = f" (copy {copy})" if copy else ""
        path.write_text(f"# {heading}{suffix}\n\n{text}{suffix}\n", encoding="utf-8")
        paths[(stem, i)] = str(path.resolve())
    return paths


def search(index: DocumentIndex, linear: DocumentIndex, question: str, k: int, mode: str) -> list[str]:
    if mode == "hybrid_linear":
        return [h.source for h in linear.search("bench", question, k=k, mode="hybrid")]
    return [h.source for h in index.search("bench", question, k=k, mode=mode)]  # type: ignore[arg-type]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(index: DocumentIndex, linear: DocumentIndex, questions: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for mode in MODES:
        search(index, linear, questions[0], 5, mode)  # warm-up: loads the FTS index and the model
        times = []
        for question in questions:
            started = time.perf_counter()
            search(index, linear, question, 5, mode)
            times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"p50_ms": round(percentile(times, 0.5), 1), "p95_ms": round(percentile(times, 0.95), 1),
                     "n": len(times)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--copies", type=int, default=8, help="corpus copies for the large index")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (the machine is shared)")
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()

    paragraphs, questions = load_corpus(args.corpus)
    embedder = LocalEmbedder(EmbedderSettings(threads=args.threads))
    results: dict = {
        "corpus": {"paragraphs": len(paragraphs), "questions": len(questions), "articles":
                   len({t for t, _ in paragraphs}), "source": "SQuAD v1.1 validation (docs/demo_corpus)"},
        "settings": {"embedding_model": embedder.model_name, "chunk_size": 800, "chunk_overlap": 150,
                     "hybrid_pool": 20, "onnx_threads": args.threads, "k": [1, 5]},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
                        **{p: metadata.version(p) for p in ("lancedb", "fastembed", "onnxruntime")},
                        # The machine is shared (a local LM server, other jobs): timings depend on its load.
                        "load_average_1m_at_start": round(os.getloadavg()[0], 2)},
    }
    latency_questions = [q["question"] for q in questions[: args.latency_queries]]

    # A distinctive prefix: other tools on a shared machine clean up their own "sme-bench-*" folders.
    with tempfile.TemporaryDirectory(prefix="sme-mcp-retrieval-bench-") as tmp:
        root = Path(tmp)
        paths = write_paragraphs(paragraphs, root / "docs" / "copy0")
        index = DocumentIndex(root / "db", embedder)
        linear = DocumentIndex(root / "db", embedder, hybrid_fusion="linear")

        started = time.perf_counter()
        report = index.ingest("bench", [root / "docs" / "copy0"])
        build_small = time.perf_counter() - started
        print(f"indexed {report.documents} paragraphs as {report.chunks} chunks in {build_small:.1f} s",
              file=sys.stderr)

        quality = {}
        for mode in MODES:
            found = {1: 0, 5: 0}
            for q in questions:
                sources = search(index, linear, q["question"], 5, mode)
                gold = paths[(q["title"], q["paragraph"])]
                found[1] += gold in sources[:1]
                found[5] += gold in sources
            quality[mode] = {f"recall@{k}": round(found[k] / len(questions), 4) for k in (1, 5)}
            print(f"{mode:14} recall@1 {quality[mode]['recall@1']:.3f}  recall@5 {quality[mode]['recall@5']:.3f}",
                  file=sys.stderr)
        results["quality"] = quality

        scale = []
        started = time.perf_counter()
        unchanged = index.ingest("bench", [root / "docs" / "copy0"])
        scale.append({"chunks": report.chunks, "documents": report.documents, "build_s": round(build_small, 1),
                      "reingest_unchanged_s": round(time.perf_counter() - started, 2),
                      "latency": latency(index, linear, latency_questions)})
        assert unchanged.chunks_written == 0

        for copy in range(1, args.copies):
            write_paragraphs(paragraphs, root / "docs" / f"copy{copy}", copy)
        big = DocumentIndex(root / "db-big", embedder)
        big_linear = DocumentIndex(root / "db-big", embedder, hybrid_fusion="linear")
        done = {"n": 0}

        def progress(i: int, total: int) -> None:
            if i * 10 // total != done["n"]:
                done["n"] = i * 10 // total
                print(f"  large index: {i}/{total} files, {time.perf_counter() - started:.0f} s", file=sys.stderr)

        started = time.perf_counter()
        big_report = big.ingest("bench", [root / "docs"], progress=progress)
        build_big = time.perf_counter() - started
        started = time.perf_counter()
        big.ingest("bench", [root / "docs"])
        reingest_big = time.perf_counter() - started
        scale.append({"chunks": big_report.chunks, "documents": big_report.documents, "build_s": round(build_big, 1),
                      "reingest_unchanged_s": round(reingest_big, 2),
                      "latency": latency(big, big_linear, latency_questions)})
        results["scale"] = scale

    results["environment"]["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_table(results)
    print(f"\nwritten to {args.out}")


def print_table(results: dict) -> None:
    print(f"\nRetrieval quality ({results['corpus']['questions']} SQuAD questions, "
          f"{results['corpus']['paragraphs']} paragraphs)")
    print(f"{'mode':15}{'recall@1':>10}{'recall@5':>10}")
    for mode, q in results["quality"].items():
        print(f"{mode:15}{q['recall@1']:>10.3f}{q['recall@5']:>10.3f}")
    print("\nScale (build = chunk + embed + write + compact + FTS index; latency of a k=5 query)")
    print(f"{'chunks':>8}{'build s':>9}{'reingest s':>11}  " + "".join(f"{m + ' p50/p95 ms':>28}" for m in MODES))
    for row in results["scale"]:
        timing = row["latency"]
        cells = "".join(f"{timing[m]['p50_ms']:.1f} / {timing[m]['p95_ms']:.1f}".rjust(28) for m in MODES)
        print(f"{row['chunks']:>8}{row['build_s']:>9.1f}{row['reingest_unchanged_s']:>11.2f}  {cells}")


if __name__ == "__main__":
    main()
