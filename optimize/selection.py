"""Which gold items chose a program, so that no reported score includes them.

Until gates moved to dev, the promotion gate compared programs on the first holdout items, so
those items chose the shipped programs (math v1, router v1: `holdout[:60]`). A holdout score
that includes them runs high. Every optimization receipt lists its gate items; this module
reads them back, and `run_eval` leaves them out of every holdout evaluation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def _dirs(receipts_dirs: Path | Sequence[Path]) -> list[Path]:
    return [receipts_dirs] if isinstance(receipts_dirs, Path) else list(receipts_dirs)


def holdout_items_that_chose(receipts_dirs: Path | Sequence[Path], goldset: str) -> dict[str, list[str]]:
    """Holdout item ids that an optimization of `goldset` gated on, per optimize receipt.

    Receipts whose gate ran on dev (`report.gate_split == "dev"`) contribute nothing: their
    holdout items were only reported. Older receipts gated on their `holdout_items`.

    Args:
        receipts_dirs: A receipts folder, or several (`Settings.receipt_dirs()`: an installed wheel's own
            receipts and the project's shipped ones).

    Example:
        >>> chose = holdout_items_that_chose(Path("receipts"), "math")
        >>> len(chose["optimize-math-20261127T171610Z.json"])
        60
    """
    chose: dict[str, list[str]] = {}
    paths = [path for directory in _dirs(receipts_dirs) for path in directory.glob(f"optimize-{goldset}-*.json")]
    for path in sorted(paths, key=lambda p: p.name):
        if path.name in chose:
            continue
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


def clean_holdout_score(receipts_dirs: Path | Sequence[Path], goldset: str,
                        version: str | None) -> dict[str, object] | None:
    """The newest complete holdout evaluation of `version` (None: base) that left out the gate items.

    Args:
        receipts_dirs: A receipts folder, or several; receipts are taken in name (time) order across them.

    Returns:
        `{"score", "correct", "n", "receipt"}`, or None when no such evaluation was recorded.
    """
    from sme_mcp.optimize.receipts import load_receipts

    bodies = [body for directory in _dirs(receipts_dirs) if directory.is_dir()
              for body in load_receipts(directory, skip_unreadable=True)]
    found = None
    for body in sorted(bodies, key=lambda b: b["_name"]):
        report = body.get("report") or {}
        if not body["_name"].startswith(f"eval-{goldset}-holdout-") or "excluded" not in body:
            continue
        if report.get("program_version") != version or not report.get("complete", True):
            continue
        found = {"score": report["score"], "correct": report["correct"], "n": report["n"], "receipt": body["_name"]}
    return found
