"""Versioned compiled programs on disk: `<root>/<name>/<version>.json` plus an `active.json` pointer."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel


class ProgramVersion(BaseModel):
    name: str
    version: str
    file: str
    holdout_score: float | None = None
    receipt: str | None = None


class ProgramStore:
    """Reads which compiled version of each program is active.

    Args:
        root: Directory holding one folder per program name (router, math, code, general).
    """

    def __init__(self, root: Path):
        self.root = root

    def active(self, name: str) -> ProgramVersion | None:
        pointer = self.root / name / "active.json"
        if not pointer.is_file():
            return None
        try:
            version = ProgramVersion.model_validate(json.loads(pointer.read_text()))
        except (OSError, ValueError):
            return None
        return version if (self.root / name / version.file).is_file() else None

    def path(self, version: ProgramVersion) -> Path:
        return self.root / version.name / version.file
