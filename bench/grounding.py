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

A check that calls everything `grounded` would score well on right answers, so the SQuAD questions also
get a *wrong* answer of the same shape taken from the passages shown (`distractor`): another number when
the gold answer has one, else another capitalised name, picked from the sentence that shares most words
with the question: the wrong answer a model is most tempted by ("Melbourne" for Australia's capital
from a passage on Victoria). A good check labels the gold answer `grounded` and the distractor not.
The distractor is drawn twice: from all the passages shown (often from the very sentence holding the
right answer, which no sentence-level check can tell apart), and with the passages that name the right
answer taken away (`distractors_answer_absent`: the documents do not say, as for Australia's capital).
The SQuAD questions are split in two halves by a hash of their id: `tune` is where the check's rule
was chosen, `report` the half that reports it.

Usage:
    .venv/bin/python bench/grounding.py [--out bench/results/grounding.json] [--contexts /tmp/ctx.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, conditions, finish, summary, write_json

OUTCOMES = ("grounded", "partial", "not_grounded", "not_in_documents", "unchecked")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*\d(?![\w])|(?<![\w.])\d(?![\w.])")
_NAME = re.compile(r"(?:[A-Z][\w'\u2019-]*)(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'\u2019-]*)*")
_NOT_NAMES = frozenset({"The", "A", "An", "In", "On", "At", "It", "He", "She", "They", "This", "That", "These",
                        "Those", "His", "Her", "Its", "Their", "After", "Before", "During", "When", "While",
                        "However", "Although", "As", "By", "For", "From", "With", "But", "And", "Of", "To", "If",
                        "Since", "There", "Then", "Also", "Many", "Some", "Most", "One", "Other", "Such"})


def _lower_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def half(item_id: str) -> str:
    """'tune' or 'report', fixed by the id: the rule is chosen on one half and reported on the other."""
    return "tune" if hashlib.sha1(item_id.encode()).digest()[0] % 2 == 0 else "report"


def distractor(golds: list[str], question: str, context: list[str]) -> str | None:
    """A wrong answer of the gold answer's shape from the passages shown, from the sentence sharing most words
    with the question; None when the gold answer is neither a number nor a name, or no candidate is found.

    Example:
        >>> distractor(["Canberra"], "What is the capital of Australia?",
        ...            ["Victoria: Victoria is a state. Melbourne is the capital of Victoria."])
        'Melbourne'
    """
    from sme_mcp.experts.grounding import _SENTENCE

    gold_words = set().union(*(_lower_words(g) for g in golds))
    asked = _lower_words(question)
    numeric = any(ch.isdigit() for ch in golds[0])
    if not numeric and not golds[0][:1].isupper():
        return None
    best: tuple[int, str] | None = None
    for passage in context:
        _, _, text = passage.partition(": ")
        for sentence in _SENTENCE.split(text):
            shared = len(_lower_words(sentence) & asked)
            pattern = _NUMBER if numeric else _NAME
            for match in pattern.finditer(sentence):
                candidate = match.group(0).strip(" ,.")
                words = _lower_words(candidate)
                if not words or words & gold_words or words <= asked:
                    continue
                if not numeric and all(w in _NOT_NAMES for w in candidate.split()):
                    continue
                if best is None or shared > best[0]:
                    best = (shared, candidate)
    return best[1] if best else None


def _counts(outcomes: list[str]) -> dict[str, Any]:
    n = len(outcomes)
    counts = Counter(outcomes)
    return {"n": n, "outcomes": {o: counts[o] for o in OUTCOMES},
            "share": {o: round(counts[o] / n, 3) if n else None for o in OUTCOMES}}


def retrieve_all(contexts: Path | None) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Every question with the passages the general expert would be shown (read from `contexts` when it
    exists, else retrieved and written there), and the retrieval settings."""
    from sme_mcp.config.settings import Settings
    from sme_mcp.experts.general_rag import retrieve_context
    from sme_mcp.experts.service import ExpertService

    if contexts is not None and contexts.exists():
        saved = json.loads(contexts.read_text())
        return saved["settings"], saved["sets"]
    settings = Settings()
    sets = {
        "squad_demo": [json.loads(x) for x in (REPO / "docs/demo_corpus/questions.jsonl").read_text().splitlines()
                       if x.strip()],
        "nq_open_dev": [json.loads(x) for x in (REPO / "goldsets/general/dev.jsonl").read_text().splitlines()
                        if x.strip()],
    }
    service = ExpertService(settings, local=None)
    try:
        service.search_documents("warm up the embedder", 1)
        for items in sets.values():
            for item in items:
                started = time.perf_counter()
                item["context"], _ = retrieve_context(service.search_documents, item["question"],
                                                      settings.retrieval_k, settings.retrieval_min_similarity,
                                                      settings.retrieval_pool)
                item["retrieval_s"] = time.perf_counter() - started
    finally:
        service.close()
    retrieval = {"k": settings.retrieval_k, "min_similarity": settings.retrieval_min_similarity,
                 "pool": settings.retrieval_pool}
    if contexts is not None:
        contexts.write_text(json.dumps({"settings": retrieval, "sets": sets}))
    return retrieval, sets


def run(out: Path, contexts: Path | None = None) -> dict[str, Any]:
    from sme_mcp.experts.grounding import check_grounding

    cond = conditions("no LM; the gold answer stands for a right answer and a distractor from the passages for "
                      "a wrong one; demo corpus index of the data dir")
    retrieval, sets = retrieve_all(contexts)
    result: dict[str, Any] = {**retrieval, "sets": {}}
    for name, items in sets.items():
        outcomes: dict[str, list[str]] = {"all": [], "tune": [], "report": []}
        wrong: dict[str, list[str]] = {"all": [], "tune": [], "report": []}
        absent: dict[str, list[str]] = {"all": [], "tune": [], "report": []}
        seconds: list[float] = []
        examples: list[dict[str, Any]] = []
        for item in items:
            golds = [str(g) for g in (item.get("answers") or [item.get("answer")])]
            started = time.perf_counter()
            check = check_grounding(golds[0], item["context"], item["question"])
            seconds.append(time.perf_counter() - started + item["retrieval_s"])
            part = half(item["id"]) if name == "squad_demo" else "all"
            for key in {"all", part}:
                outcomes[key].append(check["outcome"])
            if len(examples) < 5 and (check["outcome"] == "grounded") == (name == "nq_open_dev"):
                examples.append({"question": item["question"], "gold": golds[0], "outcome": check["outcome"],
                                 "details": check["details"][:3]})
            if name != "squad_demo":
                continue
            fake = distractor(golds, item["question"], item["context"])
            if fake is not None:
                outcome = check_grounding(fake, item["context"], item["question"])["outcome"]
                for key in ("all", part):
                    wrong[key].append(outcome)
            # The documents do not say: the passages that name the right answer are taken away.
            others = [p for p in item["context"] if not any(g.lower() in p.lower() for g in golds)]
            fake = distractor(golds, item["question"], others) if others else None
            if fake is not None:
                outcome = check_grounding(fake, others, item["question"])["outcome"]
                for key in ("all", part):
                    absent[key].append(outcome)
        entry: dict[str, Any] = {**_counts(outcomes["all"]), "seconds_per_question": summary(seconds, 4),
                                 "examples_against_expectation": examples}
        if name == "squad_demo":
            entry["halves"] = {key: _counts(outcomes[key]) for key in ("tune", "report")}
            entry["distractors"] = {key: _counts(wrong[key]) for key in ("all", "tune", "report")}
            entry["distractors_answer_absent"] = {key: _counts(absent[key]) for key in ("all", "tune", "report")}
        result["sets"][name] = entry
        shares = ", ".join(f"{o} {entry['outcomes'][o]}" for o in OUTCOMES if entry["outcomes"][o])
        print(f"{name}: {entry['n']} questions, gold answers: {shares}", file=sys.stderr)
        if name == "squad_demo":
            for key in ("tune", "report"):
                gold_share = entry["halves"][key]["share"]["grounded"]
                fake_share = entry["distractors"][key]["share"]["grounded"]
                absent_share = entry["distractors_answer_absent"][key]["share"]["grounded"]
                print(f"  {key} half: gold grounded {gold_share}; distractor grounded {fake_share} "
                      f"({entry['distractors'][key]['n']}), with the answer's passages removed {absent_share} "
                      f"({entry['distractors_answer_absent'][key]['n']})", file=sys.stderr)
    result["conditions"] = finish(cond)
    write_json(out, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "grounding.json")
    parser.add_argument("--contexts", type=Path, default=None,
                        help="JSON file of the retrieved passages: read if it exists, else written (retrieve once, "
                        "compare checks many times)")
    args = parser.parse_args()
    run(args.out, args.contexts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
