"""Gold-set files: one JSON object per line, per domain and split (see goldsets/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

Split = Literal["train", "dev", "holdout"]
SPLITS: tuple[Split, ...] = ("train", "dev", "holdout")
GOLDSETS = ("math", "code", "general", "router")


class GoldsetError(ValueError):
    """A gold set is missing or malformed; the message names the file and line."""


class GoldItem(BaseModel):
    id: str
    domain: str
    question: str = Field(min_length=1)
    answer: str | None = None
    answers: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=list)
    setup: str = ""
    label: str | None = None
    source: str = ""


def goldset_path(root: Path, name: str, split: Split) -> Path:
    if name not in GOLDSETS:
        raise GoldsetError(f"unknown gold set {name!r}; use one of: {', '.join(GOLDSETS)}")
    return root / name / f"{split}.jsonl"


def load_goldset(path: Path, limit: int | None = None) -> list[GoldItem]:
    """Reads and validates a gold-set file.

    Raises:
        GoldsetError: The file is missing, empty, or has a malformed line.
    """
    if not path.is_file():
        raise GoldsetError(f"no gold set at {path}; build them with scripts/build_goldsets.py")
    items: list[GoldItem] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                items.append(GoldItem.model_validate(json.loads(line)))
            except (ValueError, ValidationError) as exc:
                raise GoldsetError(f"{path}:{lineno}: not a valid gold item: {str(exc)[:300]}") from None
            if limit is not None and len(items) >= limit:
                break
    if not items:
        raise GoldsetError(f"{path} has no items")
    return items


def split_sizes(root: Path, name: str) -> dict[str, int]:
    """Item counts of each split file of a gold set (0 where a file is missing)."""
    sizes = {}
    for split in SPLITS:
        path = goldset_path(root, name, split)
        sizes[split] = sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.is_file() else 0
    return sizes
