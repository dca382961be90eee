"""How often an expert's answers were right, per verification outcome, in its largest evaluation.

A verification says what was checked ("passed 3 of 3 tests", "grounded in 'Super Bowl 50'"); a user also
wants to know what that is worth. The track record answers it from the receipts: for each expert, the
evaluation receipt with the most verified items (the newest of those, on a tie) gives, per (method,
outcome), how many answers there were and how many were right. An answer's `Verification.confidence`
is that share (with one right and one wrong answer added, so a small count does not claim 0 or 1), and
`confidence_basis` names the count and the receipt; an outcome seen fewer than `MIN_ANSWERS` times gets
no confidence.

The record is generated into `experts/track_record.json` by `scripts/track_record.py` (never edited by
hand; a test checks it matches the receipts). It describes past evaluations, which ran on the gold sets'
questions: a user's own questions may differ.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

RECORD_PATH = Path(__file__).with_name("track_record.json")
MIN_ANSWERS = 10  # fewer answers with an outcome than this, and the share says too little to show


def build(receipts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The track record of every gold set from its evaluation receipt with the most verified items (a small run on
    chosen items, say the questions a fix was aimed at, would misstate the rate; on a tie, the newest).

    Args:
        receipts: Loaded receipts (`optimize.receipts.load_receipts`), each with `_name`.

    Returns:
        `{gold set: {"receipt", "split", "git_commit", "outcomes": {"method/outcome": {"n", "right"}}}}`.

    Example:
        >>> record = build([{"_name": "r.json", "kind": "eval", "created_at": "2026", "git_commit": "abc",
        ...                  "report": {"goldset": "code", "split": "dev"},
        ...                  "items": [{"correct": True, "verification": {"method": "tests", "outcome": "passed"}}]}])
        >>> record["code"]["receipt"], record["code"]["outcomes"]
        ('r.json', {'tests/passed': {'n': 1, 'right': 1}})
    """
    chosen: dict[str, dict[str, Any]] = {}
    most: dict[str, int] = {}
    for r in sorted((r for r in receipts if r.get("kind") == "eval"), key=lambda r: r["created_at"]):
        verified = sum(bool(i.get("verification")) for i in r.get("items", []))
        goldset = r["report"]["goldset"]
        if verified and verified >= most.get(goldset, 0):
            chosen[goldset], most[goldset] = r, verified
    record: dict[str, Any] = {}
    for goldset, r in sorted(chosen.items()):
        outcomes: dict[str, dict[str, int]] = {}
        for item in r["items"]:
            v = item.get("verification")
            if not v:
                continue
            cell = outcomes.setdefault(f"{v['method']}/{v['outcome']}", {"n": 0, "right": 0})
            cell["n"] += 1
            cell["right"] += bool(item["correct"])
        record[goldset] = {"receipt": r["_name"], "split": r["report"]["split"], "git_commit": r.get("git_commit"),
                           "outcomes": dict(sorted(outcomes.items()))}
    return record


@cache
def _shipped() -> dict[str, Any]:
    try:
        return json.loads(RECORD_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def confidence(expert: str, method: str, outcome: str,
               record: dict[str, Any] | None = None) -> tuple[float, str] | None:
    """The confidence an answer with this verification outcome deserves, and what it rests on.

    Args:
        expert: The expert (its gold set has the same name).
        method: The verification's method ("tests", "grounding", ...).
        outcome: Its outcome ("passed", "grounded", ...).
        record: A track record (`build`); default: the shipped one.

    Returns:
        (share right, basis in words), or None when the outcome was seen fewer than `MIN_ANSWERS` times.

    Example:
        >>> rec = {"code": {"receipt": "r.json", "split": "holdout", "git_commit": "abc",
        ...                 "outcomes": {"tests/passed": {"n": 40, "right": 34}}}}
        >>> share, basis = confidence("code", "tests", "passed", rec)
        >>> share, basis[-55:]
        (0.833, '34 of 40 answers whose check came out passed were right')
    """
    entry = (record if record is not None else _shipped()).get(expert)
    cell = entry and entry["outcomes"].get(f"{method}/{outcome}")
    if not cell or cell["n"] < MIN_ANSWERS:
        return None
    share = round((cell["right"] + 1) / (cell["n"] + 2), 3)
    return share, (f"in its largest evaluation ({entry['split']}, receipts/{entry['receipt']}), {cell['right']} of "
                   f"{cell['n']} answers whose check came out {outcome} were right")
