"""Versioned compiled programs: `<root>/<name>/<version>.json` (DSPy state), `<version>.meta.json`, and
an `active.json` pointer. Every write is atomic, and the pointer moves only after the version it
names is complete on disk, so a crash at any point leaves the previously active program intact.

A store can be seeded from programs shipped with the project (`compiled/` in the repository): a
program the data dir has never held starts from the shipped versions, with their receipts' scores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sme_mcp.tools.errors import SmeError
from sme_mcp.tools.files import atomic_write_text

BASE = "base"
_VERSION = re.compile(r"^v(\d+)$")


class ProgramError(SmeError, ValueError):
    """A program version that does not exist, or a pointer that cannot be written; the message says which."""


class ProgramVersion(BaseModel):
    name: str
    version: str
    file: str
    status: str = Field(default="candidate", description="candidate, promoted or rejected")
    gate_score: float | None = Field(default=None, description="Score on the items that chose it (the gate)")
    gate_split: str | None = Field(
        default=None, description="Where the gate ran: dev; None for versions gated on the first holdout items"
    )
    holdout_score: float | None = Field(
        default=None, description="Score on holdout items that chose nothing; for versions gated on holdout "
        "items (before gates moved to dev) this is the gate score, and `gate_split` is None",
    )
    baseline_score: float | None = None
    receipt: str | None = None
    optimizer: str | None = None
    created_at: str | None = None


class ProgramStore:
    """Saves, lists, promotes and rolls back compiled versions of each program.

    Args:
        root: Directory holding one folder per program name (router, math, code, general).
        seed: Shipped programs in the same layout; a name with no folder under `root` yet is
            first copied from here (once: after that, the data dir's own versions and pointer rule).
    """

    def __init__(self, root: Path, seed: Path | None = None):
        self.root = root
        self.seed = seed

    def _seeded(self, name: str) -> Path:
        folder = self.root / name
        shipped = self.seed / name if self.seed is not None else None
        if not folder.exists() and shipped is not None and (shipped / "active.json").is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.root))
            try:
                for item in shipped.iterdir():
                    if item.is_file():
                        shutil.copyfile(item, staging / item.name)
                staging.rename(folder)  # whole or not at all; a concurrent seeder may have won
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        return folder

    def active(self, name: str) -> ProgramVersion | None:
        """The active version, or None when the base (uncompiled) program is active."""
        pointer = self._seeded(name) / "active.json"
        if not pointer.is_file():
            return None
        try:
            version = json.loads(pointer.read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return None if version == BASE else self.get(name, version)

    def get(self, name: str, version: str) -> ProgramVersion | None:
        meta = self._seeded(name) / f"{version}.meta.json"
        if not _VERSION.match(version) or not meta.is_file():
            return None
        try:
            found = ProgramVersion.model_validate(json.loads(meta.read_text()))
        except (OSError, ValueError):
            return None
        return found if self.path(found).is_file() else None

    def versions(self, name: str) -> list[ProgramVersion]:
        folder = self._seeded(name)
        found = [self.get(name, p.name.removesuffix(".meta.json")) for p in folder.glob("v*.meta.json")]
        return sorted((v for v in found if v), key=lambda v: int(v.version[1:]))

    def path(self, version: ProgramVersion) -> Path:
        return self.root / version.name / version.file

    def load_into(self, module: Any, version: ProgramVersion) -> list[str]:
        """Loads a saved version into `module`; returns the module's parts the file does not cover.

        A version saved before the expert gained a part (the math expert's word-problem
        predictor, for one) still loads: its parts are restored and the new ones stay as built.
        """
        path = self.path(version)
        state = json.loads(path.read_text())
        params = module.named_parameters()
        missing = [name for name, _ in params if name not in state]
        if not missing:
            module.load(str(path))  # all-or-nothing: DSPy checks every part before touching any
            return []
        for name, param in params:
            if name in state:
                param.load_state(state[name])
        return missing

    def save(self, name: str, module: Any, **meta: Any) -> ProgramVersion:
        """Saves a compiled DSPy module as the next version (not active until `promote`)."""
        folder = self._seeded(name)
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in folder.glob("v*.json") if (m := _VERSION.match(p.name.split(".")[0]))]
        version = f"v{max(numbers, default=0) + 1}"
        target = folder / f"{version}.json"
        fd, tmp = tempfile.mkstemp(prefix=f".{version}.", suffix=".json", dir=folder)
        os.close(fd)
        try:
            module.save(tmp)  # DSPy writes the file itself; the rename below makes it visible whole
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        record = ProgramVersion(name=name, version=version, file=target.name, **meta)
        atomic_write_text(folder / f"{version}.meta.json", record.model_dump_json(indent=1))
        return record

    def set_status(self, record: ProgramVersion, status: str) -> ProgramVersion:
        record = record.model_copy(update={"status": status})
        atomic_write_text(self.root / record.name / f"{record.version}.meta.json", record.model_dump_json(indent=1))
        return record

    def promote(self, record: ProgramVersion) -> ProgramVersion:
        """Makes `record` the active version."""
        record = self.set_status(record, "promoted")
        self._point(record.name, record.version)
        return record

    def rollback(self, name: str, version: str) -> ProgramVersion | None:
        """Makes an earlier version (or `base`, the uncompiled program) active again.

        Raises:
            ProgramError: No such version, or the pointer cannot be written (the message says which); a
                ValueError.
        """
        self._seeded(name)
        record = None
        if version != BASE:
            record = self.get(name, version)
            if record is None:
                known = ", ".join(v.version for v in self.versions(name)) or "none"
                raise ProgramError(f"{name} has no version {version!r} (versions: {known}; or 'base')")
        try:
            self._point(name, version)
        except OSError as exc:
            raise ProgramError(f"cannot make {version} the active {name} program: writing {self.root / name} failed "
                             f"({exc.strerror or type(exc).__name__}); check that the data dir (SME_DATA_DIR) is "
                             "writable and has space") from exc
        return record

    def _point(self, name: str, version: str) -> None:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.root / name / "active.json", json.dumps({"version": version}))
