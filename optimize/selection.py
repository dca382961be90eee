"""Which gold items chose a program, so that no reported score includes them.

Until gates moved to dev, the promotion gate compared programs on the first holdout items, so
those items chose the shipped programs (math v1, router v1: `holdout[:60]`). A holdout score
that includes them runs high. Every optimization receipt lists its gate items; this module
reads them back, and `run_eval` leaves them out of every holdout evaluation.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def holdout_items_that_chose(receipts_dir: Path, goldset: str) -> dict[str, list[str]]:
    """Holdout item ids that an optimization of `goldset` gated on, per optimize receipt.

    Receipts whose gate ran on dev (`report.gate_split == "dev"`) contribute nothing: their
    holdout items were only reported. Older receipts gated on their `holdout_items`.

    Example:
        >>> chose = holdout_items_that_chose(Path("receipts"), "math")
        >>> len(chose["optimize-math-20261127T171610Z.json"])
        60
    """
    chose: dict[str, list[str]] = {}
    for path in sorted(receipts_dir.glob(f"optimize-{goldset}-*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("cannot read %s (%s); its gate items are not known", path.name, exc)
            continue
        report = body.get("report") or {}
        if report.get("request", {}).get("goldset", goldset) != goldset:
            continue
        if report.get("gate_split", "holdout") != "holdout":
            continue
        ids = [item["id"] for item in body.get("holdout_items", []) if isinstance(item, dict) and "id" in item]
        if ids:
            chose[path.name] = ids
    return chose


def clean_holdout_score(receipts_dir: Path, goldset: str, version: str | None) -> dict[str, object] | None:
    """The newest complete holdout evaluation of `version` (None: base) that left out the gate items.

    Returns:
        `{"score", "correct", "n", "receipt"}`, or None when no such evaluation was recorded.
    """
    from sme_mcp.optimize.receipts import load_receipts

    if not receipts_dir.is_dir():
        return None
    found = None
    for body in load_receipts(receipts_dir, skip_unreadable=True):
        report = body.get("report") or {}
        if not body["_name"].startswith(f"eval-{goldset}-holdout-") or "excluded" not in body:
            continue
        if report.get("program_version") != version or not report.get("complete", True):
            continue
        found = {"score": report["score"], "correct": report["correct"], "n": report["n"], "receipt": body["_name"]}
    return found
