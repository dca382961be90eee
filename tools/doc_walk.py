"""A bounded walk over the folders an ingest names: entry, depth and time limits, never outside the allowed folders."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sme_mcp.tools.file_access import AllowedFolders, WalkLimits


class FileProblem(BaseModel):
    path: str
    reason: str



_OUTSIDE = "a link to a place outside the folders this server may read; not followed"


class _Walk:
    """One bounded walk over folders: counts entries, watches depth and time, never enters a folder twice."""

    def __init__(self, limits: WalkLimits, folders: AllowedFolders | None, report: Any):
        """`report` is the ingest's IngestReport: folders that cannot be listed go in its `skipped`."""
        self.limits, self.folders, self.report = limits, folders, report
        self.deadline = None if limits.max_seconds is None else time.monotonic() + limits.max_seconds
        self.seen = 0  # directory entries read, hidden ones included
        self.entered: set[Path] = set()
        self.stopped: str | None = None  # a limit that ended the walk
        self.limited: str | None = None  # the first limit reached (the walk may have gone on past a depth limit)

    def _stop(self, why: str) -> None:
        self.stopped = self.stopped or why
        self.limited = self.limited or why

    def _entries(self, folder: Path) -> list[os.DirEntry[str]]:
        """The folder's entries in name order; never more than the entry budget has left (then the walk stops)."""
        budget = self.limits.max_files
        with os.scandir(folder) as it:
            if budget is None:
                return sorted(it, key=lambda e: e.name)
            left = budget - self.seen
            entries = list(itertools.islice(it, left + 1))
        self.seen += len(entries)
        if len(entries) > left:
            self._stop(f"files: more than {budget} files and folders under the named folders")
            entries = entries[:left]
        return sorted(entries, key=lambda e: e.name)

    def folder(self, root: Path) -> list[Path]:
        """The files under `root` (resolved), sorted, until a limit stops the walk."""
        found: list[Path] = []
        stack = [(root, 0)]
        self.entered.add(root)
        while stack and not self.stopped:
            folder, depth = stack.pop()
            if self.deadline is not None and time.monotonic() > self.deadline:
                self._stop(f"time: listing folders took over {self.limits.max_seconds:g} s")
                break
            try:
                entries = self._entries(folder)
            except OSError as exc:
                self.report.skipped.append(FileProblem(path=str(folder), reason=f"cannot list: {exc.strerror or exc}"))
                continue
            subfolders: dict[Path, None] = {}
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                try:
                    if entry.is_symlink():
                        target = path.resolve()
                        if self.folders is not None and not self.folders.contains(target):
                            self.report.skipped.append(FileProblem(path=str(path), reason=_OUTSIDE))
                            continue
                        if target.is_dir():
                            subfolders[target] = None
                            continue
                        if not target.is_file():
                            continue  # a dangling link
                        path = target
                    elif entry.is_dir(follow_symlinks=False):
                        subfolders[path] = None
                        continue
                    elif not entry.is_file(follow_symlinks=False):
                        continue  # FIFOs, sockets, devices
                except OSError:
                    continue
                found.append(path)
            fresh = [sub for sub in subfolders if sub not in self.entered]
            if fresh and self.limits.max_depth is not None and depth + 1 > self.limits.max_depth:
                self.limited = self.limited or (f"depth: folders more than {self.limits.max_depth} levels below a "
                                                "named folder were not read")
                continue
            for sub in reversed(fresh):  # popped in name order
                self.entered.add(sub)
                stack.append((sub, depth + 1))
        return sorted(found)
