"""How much of the passages the general expert shows can be cut before the answer goes with it (a script, not a
test; no LM call).

Each SQuAD question of the demo corpus gets the passages the general expert would be shown (retrieval as the
expert does it: the service's hybrid search, similarity floor, pool and reordering; see bench/grounding.py's
`retrieve_all`). Each way of cutting them (`experts.context_window.sentence_window` with `keep` best sentences
per passage and `window` sentences either side; keep 0 = whole passages, what the expert shows today) is
scored by:
- `answer_shown`: the share of questions with one of their gold answers still in the passages shown;
- `kept_when_whole_had_it`: the same among questions whose whole passages had it;
- `chars`: the characters of the passages shown (the model reads about one token per 4 characters).
The questions are split in two halves by a hash of their id, as in bench/grounding.py. The cut chosen is the
shortest whose `answer_shown` on the tune half is within `--tolerance` of whole passages'; its figures are
reported on the report half. Whether it keeps the expert's exact match is for an LM run to say
(`sme-mcp eval --domain general --goldset ...` with `SME_RETRIEVAL_KEEP_SENTENCES`).

Usage:
    .venv/bin/python bench/context_window.py [--contexts /tmp/ctx.json] [--tolerance 0.02]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common import RESULTS, conditions, finish, summary, write_json
from grounding import half, retrieve_all

CUTS = ((0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1))  # (keep, window)


def shown(answers: list[str], passages: list[str]) -> bool:
    """Whether one of the gold answers is in the passages (case-insensitive)."""
    text = " ".join(passages).lower()
    return any(a.lower() in text for a in answers)


def run(out: Path, contexts: Path | None, tolerance: float) -> dict[str, Any]:
    from sme_mcp.experts.context_window import sentence_window

    cond = conditions("no LM; SQuAD questions of the demo corpus, passages as the general expert retrieves them")
    retrieval, sets = retrieve_all(contexts)
    items = sets["squad_demo"]
    cuts: dict[str, Any] = {}
    for keep, window in CUTS:
        name = "whole" if keep == 0 else f"keep{keep}_window{window}"
        rows: dict[str, list[tuple[bool, bool, int]]] = {"tune": [], "report": []}
        for item in items:
            cut = sentence_window(item["question"], item["context"], keep=keep, window=window)
            rows[half(item["id"])].append((shown(item["answers"], item["context"]), shown(item["answers"], cut),
                                           sum(len(p) for p in cut)))
        cuts[name] = {"keep": keep, "window": window} | {part: {
            "n": len(r),
            "answer_shown": round(sum(s for _, s, _ in r) / len(r), 3),
            "kept_when_whole_had_it": round(sum(s for w, s, _ in r if w) / max(1, sum(w for w, _, _ in r)), 3),
            "chars": summary([c for _, _, c in r], 0),
        } for part, r in rows.items()}
    whole = cuts["whole"]["tune"]["answer_shown"]
    eligible = [n for n, c in cuts.items() if c["tune"]["answer_shown"] >= whole - tolerance]
    chosen = min(eligible, key=lambda n: cuts[n]["tune"]["chars"]["mean"])
    result = {"retrieval": retrieval, "questions": len(items), "tolerance": tolerance, "cuts": cuts,
              "chosen_on_tune": {"cut": chosen, "by": f"fewest characters on tune with answer_shown within "
                                 f"{tolerance} of whole passages'", "report": cuts[chosen]["report"],
                                 "whole_report": cuts["whole"]["report"]}}
    for name, c in cuts.items():
        t, r = c["tune"], c["report"]
        print(f"{name:16} answer shown {t['answer_shown']:.3f}/{r['answer_shown']:.3f}  kept "
              f"{t['kept_when_whole_had_it']:.3f}/{r['kept_when_whole_had_it']:.3f}  chars (mean) "
              f"{t['chars']['mean']:.0f}/{r['chars']['mean']:.0f}   (tune/report)", file=sys.stderr)
    print(f"chosen on tune: {chosen}", file=sys.stderr)
    result["conditions"] = finish(cond)
    write_json(out, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "context_window.json")
    parser.add_argument("--contexts", type=Path, default=None,
                        help="JSON cache of the retrieved passages (written when missing, read when present)")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="answer_shown a cut may lose on the tune half against whole passages")
    args = parser.parse_args()
    run(args.out, args.contexts, args.tolerance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
