"""Gold-set files: one JSON object per line, per domain and split (see goldsets/README.md)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError

from sme_mcp.config.settings import DEMO_CORPUS_DIR
from sme_mcp.tools.errors import SmeError
from sme_mcp.tools.file_access import AllowedFolders, FileRefused, open_regular

if TYPE_CHECKING:
    from sme_mcp.config.settings import Settings

Split = Literal["train", "dev", "holdout"]
SPLITS: tuple[Split, ...] = ("train", "dev", "holdout")
GOLDSETS = ("math", "code", "general", "router")  # the built-in gold sets; declared experts bring their own


class GoldsetError(SmeError, ValueError):
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


MAX_LINE_BYTES = 1_000_000  # one gold item per line; a longer line is refused without being read whole
MAX_FILE_BYTES = 200_000_000


def load_goldset(path: Path, limit: int | None = None, *, max_line_bytes: int = MAX_LINE_BYTES,
                 max_bytes: int = MAX_FILE_BYTES, folders: AllowedFolders | None = None) -> list[GoldItem]:
    """Reads and validates a gold-set file.

    The file is opened without following a final symlink (with `folders`, the opened file must lie
    inside them), read line by line with each line capped at `max_line_bytes`, and errors name the
    file, line and field but never quote the file's content.

    Raises:
        GoldsetError: The file is missing, not a regular file, too large, empty, or has a malformed line.
    """
    try:
        fd = open_regular(path, folders)
    except FileNotFoundError:
        raise GoldsetError(f"no gold set at {path}; build them with scripts/build_goldsets.py") from None
    except (FileRefused, IsADirectoryError):
        raise GoldsetError(f"{path} is not a regular file; give a JSONL file, one gold item per line") from None
    except OSError as exc:
        raise GoldsetError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    items: list[GoldItem] = []
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise GoldsetError(f"{path} is {size} bytes; the limit is {max_bytes}. Split it, or score part of it")
        lineno = 0
        while True:
            raw = f.readline(max_line_bytes + 1)
            if not raw:
                break
            lineno += 1
            if len(raw) > max_line_bytes:
                raise GoldsetError(f"{path}:{lineno}: the line is longer than {max_line_bytes} bytes; a gold-set file "
                                   "holds one JSON object per line (is this a gold-set file?)")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise GoldsetError(f"{path}:{lineno}: not UTF-8 text (is this a binary file?); a gold-set file "
                                   "holds one JSON object per line") from None
            if not line.strip():
                continue
            items.append(_parse_item(path, lineno, line))
            if limit is not None and len(items) >= limit:
                break
    if not items:
        raise GoldsetError(f"{path} has no items")
    return items


def _parse_item(path: Path, lineno: int, line: str) -> GoldItem:
    """One line as a gold item; the error says where and why, never what the line holds."""
    where = f"{path}:{lineno}: not a valid gold item"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:  # its message has a position, not content
        raise GoldsetError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise GoldsetError(f"{where}: not usable JSON ({type(exc).__name__}: too large or too deeply nested)") from None
    if not isinstance(data, dict):
        raise GoldsetError(f"{where}: the line is JSON but not an object; each line must be an object with at least "
                           "id, domain and question") from None
    try:
        return GoldItem.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'item'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False, include_context=False)[:5]
        )
        raise GoldsetError(f"{where}: {problems[:300]}") from None


@functools.cache
def _client_folders(roots: tuple[Path, ...]) -> AllowedFolders:
    return AllowedFolders(roots, "SME_CLIENT_FILES__GOLDSET_ROOTS")


def client_goldset_folders(settings: Settings) -> AllowedFolders:
    """The folders MCP clients may name gold-set files in, resolved once per configured set."""
    roots = settings.client_files.goldset_roots
    if roots is None:
        roots = [settings.goldsets_dir, DEMO_CORPUS_DIR]
    return _client_folders(tuple(Path(r) for r in roots))


def check_client_goldset(settings: Settings, raw: str) -> Path:
    """The resolved path of a gold-set file a client named, checked and read once to validate it.

    Raises:
        AccessDenied: Outside the allowed folders (the message does not say whether it exists).
        GoldsetError: Inside them but not a usable gold-set file.
    """
    files = settings.client_files
    folders = client_goldset_folders(settings)
    path = folders.resolve(raw, "goldset_path")
    load_goldset(path, max_line_bytes=files.max_goldset_line_bytes, max_bytes=files.max_goldset_bytes,
                 folders=folders)
    return path


def split_sizes(folder: Path) -> dict[str, int]:
    """Item counts of each split file in a gold set's folder (0 where a file is missing)."""
    sizes = {}
    for split in SPLITS:
        path = folder / f"{split}.jsonl"
        sizes[split] = sum(1 for line in path.open(encoding="utf-8") if line.strip()) if path.is_file() else 0
    return sizes
