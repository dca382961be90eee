"""The folders MCP clients may make the server read, and bounded, boundary-checked reads inside them.

A client names paths (`ingest_documents`, `run_eval`'s `goldset_path`) on the server's machine. Like
the MCP reference filesystem server, the allowed folders are resolved once (symlinks included) when
the boundary is made, and every path a client names is resolved the same way (symlinks and `..`)
and must fall inside one of them. The check comes before anything about the path is looked at, so
a refusal reads the same whether or not the path exists. Files are opened without following a final
symlink and, on Linux, the opened file is checked again through /proc/self/fd, so a path swapped
for a link between the check and the read is refused too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sme_mcp.tools.errors import SmeError

_PROC_FD = Path("/proc/self/fd")


class AccessDenied(SmeError, ValueError):
    """A client named a path outside the allowed folders (or an unusable path); the message says what to do."""


class FileRefused(SmeError, ValueError):
    """A file inside the allowed folders that cannot be read as asked (not a regular file, too large)."""


@dataclass(frozen=True)
class WalkLimits:
    """Bounds on one folder walk; None means unbounded (the command line, run by the user)."""

    max_files: int | None = 10_000
    max_depth: int | None = 32
    max_seconds: float | None = 60.0


UNLIMITED = WalkLimits(None, None, None)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2]}...({len(text)} characters)...{text[-20:]}"


class AllowedFolders:
    """A set of folders, resolved once, that client-named paths must resolve into.

    Args:
        roots: The folders (a file's own path also works: then only that file is allowed).
        setting: The setting that names them, for the messages that tell the user how to change them.
    """

    def __init__(self, roots: Iterable[Path | str], setting: str):
        resolved: list[Path] = []
        for root in roots:
            path = Path(root).expanduser().resolve()
            if path not in resolved:
                resolved.append(path)
        self.roots: tuple[Path, ...] = tuple(resolved)
        self.setting = setting

    def describe(self) -> str:
        return ", ".join(map(str, self.roots)) if self.roots else "none"

    def contains(self, path: Path) -> bool:
        """Whether an already resolved path lies inside one of the folders."""
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def resolve(self, raw: object, what: str = "path") -> Path:
        """The resolved path a client named, if it lies inside the folders.

        Raises:
            AccessDenied: Not a usable absolute path, or outside the folders. The message never says
                whether the path exists.
        """
        if not isinstance(raw, str) or not raw.strip():
            raise AccessDenied(f"{what} is empty; give an absolute path inside: {self.describe()}")
        if "\x00" in raw:
            raise AccessDenied(f"{what} contains a NUL character; give a plain absolute path")
        if not self.roots:
            raise AccessDenied(f"this server lets clients read no files for this; the server's user can name "
                               f"folders in {self.setting}")
        try:
            path = Path(raw).expanduser()
        except RuntimeError:  # "~user" whose home cannot be found
            path = Path(raw)
        if not path.is_absolute():
            raise AccessDenied(f"{what} {_clip(raw)!r} is relative; give an absolute path (the server's working "
                               f"directory is not the client's) inside: {self.describe()}")
        try:
            real = path.resolve()  # strict=False: symlinks and '..' resolved as far as the path exists
        except (OSError, RuntimeError, ValueError):
            real = None
        if real is None or not self.contains(real):
            raise AccessDenied(
                f"{what} {_clip(raw)!r} is outside the folders this server lets clients read ({self.describe()}); "
                f"copy the files into one of them, or have the server's user add the folder to {self.setting}"
            )
        return real

    def open_regular(self, path: Path) -> int:
        """Opens a resolved path read-only; the descriptor is a regular file inside the folders.

        Raises:
            OSError: It cannot be opened (missing, permissions, a symlink swapped in).
            AccessDenied: The opened file is outside the folders (its path changed after the check).
            FileRefused: Not a regular file (a FIFO, a device, a folder).
        """
        return open_regular(path, self)


def open_regular(path: Path, folders: AllowedFolders | None = None) -> int:
    """Opens `path` read-only without blocking on a FIFO; it must be a regular file.

    With `folders` (a path a client named, already resolved), a final symlink is not followed and the
    opened file must lie inside them (checked on the descriptor itself on Linux).

    Raises:
        OSError, AccessDenied, FileRefused: see `AllowedFolders.open_regular`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if folders is not None:  # the path was resolved: a final symlink now was swapped in after the check
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not a regular file")
        if folders is not None and _PROC_FD.is_dir():
            opened = Path(os.readlink(_PROC_FD / str(fd)))
            if not folders.contains(opened):
                raise AccessDenied(f"{path} changed while it was being opened and now lies outside the folders "
                                   f"this server lets clients read ({folders.describe()}); try again")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path, max_bytes: int, folders: AllowedFolders | None = None) -> bytes:
    """The contents of a regular file of at most `max_bytes` bytes (see `open_regular`).

    Raises:
        OSError, AccessDenied: see `open_regular`.
        FileRefused: Not a regular file, or larger than `max_bytes`.
    """
    fd = open_regular(path, folders)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise FileRefused(f"too large ({size} bytes; the limit is {max_bytes})")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise FileRefused(f"too large (over {max_bytes} bytes)")
    return data
