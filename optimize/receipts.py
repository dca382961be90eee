"""Receipts: one JSON file per evaluation or optimization run, written atomically, never edited."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from sme_mcp.config.settings import IN_CHECKOUT, PROJECT_DIR
from sme_mcp.tools.files import atomic_write_text

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.json$")


# Untracked files here change what a run runs (an uncommitted compiled/ program, a new module or gold set), so
# they make the checkout dirty; untracked files elsewhere (receipts/, data) are what runs produce.
PROJECT_PATHS = ("experts", "server", "tools", "optimize", "compiled", "goldsets", "scripts", "bench",
                 "pyproject.toml")


def git_commit(repo: Path | None = None) -> str | None:
    """The checkout's commit, with `-dirty` when it differs from that commit.

    Dirty means a tracked file has uncommitted changes, or an untracked (and not ignored) file sits
    under one of `PROJECT_PATHS`.

    Args:
        repo: The checkout; this project's own by default.

    Returns:
        None when not in a git checkout; an installed wheel has no commit (its `sme-mcp` version is in
        the receipt's packages), and a virtualenv inside some other repository must not lend it one.
    """
    if repo is None and not IN_CHECKOUT:
        return None
    cwd = repo or PROJECT_DIR

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        tracked = git("status", "--porcelain", "--untracked-files=no")
        untracked = git("ls-files", "--others", "--exclude-standard", "--", *PROJECT_PATHS)
    except (OSError, subprocess.TimeoutExpired):
        return None
    dirty = tracked.stdout.strip() or untracked.stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
    versions = {}
    for package in ("sme-mcp", "dspy", "litellm", "mcp", "sympy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "git_commit": git_commit(),
        "packages": versions,
        "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "cpus": _cpus()},
    }


def _cpus() -> int | None:
    import os

    return os.cpu_count()


def write_receipt(directory: Path, kind: str, subject: str, payload: dict[str, Any],
                  env: dict[str, Any] | None = None) -> Path:
    """Writes `payload` (plus timestamp and environment) as `<kind>-<subject>-<UTC time>.json`.

    Args:
        env: `environment()` taken when the run started; a long run's checkout may move on meanwhile,
            and the receipt must name the code that ran. Taken now when omitted.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = directory / f"{kind}-{subject}-{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{kind}-{subject}-{stamp}-{n}.json"
    body = {"kind": kind, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(env or environment()),
            **payload}
    atomic_write_text(path, json.dumps(body, indent=1, default=str) + "\n")
    return path


def load_receipts(directory: Path, *, skip_unreadable: bool = False) -> list[dict[str, Any]]:
    """Every receipt in `directory`, by name, each with its file name as `_name` and errata applied.

    Args:
        skip_unreadable: Skip a file that is not JSON instead of raising.
    """
    receipts = []
    for path in sorted(directory.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(body, dict):
                raise ReceiptUnreadable(f"receipt {path.name} is not a JSON object")
        except (OSError, ValueError, RecursionError):  # ValueError: not JSON, or not UTF-8 at all
            if skip_unreadable:
                continue
            raise
        body["_name"] = path.name
        receipts.append(body)
    return apply_errata(directory, receipts)


def apply_errata(directory: Path, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Applies `errata.jsonl` corrections to loaded receipts (by `_name`), leaving the files untouched.

    A receipt is never edited after the fact; when a bug wrote a wrong field, the correction goes in
    `errata.jsonl` (receipt, dotted field, recorded and corrected value, reason, evidence), and the
    tables and charts show the corrected value with the erratum attached as `_errata`.

    A receipt may have several errata, applied in file order; a later erratum of a field that an
    earlier one corrected names that correction as its `recorded` value.

    Raises:
        ValueError: An erratum's `recorded` value is not what the receipt holds (the erratum is wrong,
            or it was applied twice), or its field is not in the receipt.
    """
    path = directory / "errata.jsonl"
    if not path.is_file():
        return receipts
    by_name = {r.get("_name"): r for r in receipts}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        erratum = json.loads(line)
        target = by_name.get(erratum["receipt"])
        if target is None:
            continue
        *parents, leaf = erratum["field"].split(".")
        node = target
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ValueError(f"erratum for {erratum['receipt']}: the receipt has no {erratum['field']}")
        if node.get(leaf) != erratum["recorded"]:
            raise ValueError(f"erratum for {erratum['receipt']} expects {erratum['field']} = {erratum['recorded']!r}")
        node[leaf] = erratum["corrected"]
        target.setdefault("_errata", []).append(erratum)
    return receipts


def list_receipts(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.json")) if directory.is_dir() else []


class ReceiptUnreadable(FileNotFoundError):
    """A receipt (or the errata file) exists but cannot be used; for a reader there is no usable receipt by
    that name, so it is a FileNotFoundError, with a message that says what is wrong and what to do."""


def read_receipt(directory: Path, name: str) -> dict[str, Any]:
    """Reads one receipt by file name; refuses anything that is not a plain name in `directory`.

    Raises:
        FileNotFoundError: Not a receipt name, or no such receipt.
        ReceiptUnreadable: The file is not readable JSON.
    """
    if not _NAME.match(name):
        raise FileNotFoundError(f"not a receipt name: {name!r}")
    path = directory / name
    if not path.is_file():
        raise FileNotFoundError(f"no receipt named {name}")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ReceiptUnreadable(f"receipt {name} cannot be read ({type(exc).__name__}); it is damaged: restore it "
                                "from git or delete it") from exc
    if not isinstance(body, dict):
        raise ReceiptUnreadable(f"receipt {name} is not a JSON object; restore it from git or delete it")
    return body


def read_receipt_with_errata(directory: Path, name: str) -> dict[str, Any]:
    """Reads one receipt like `read_receipt`, with its errata from `errata.jsonl` applied.

    Corrected fields hold the corrected value, and `_errata` lists the errata applied (absent when
    there are none); the file stays as written.

    Raises:
        ReceiptUnreadable: Also when `errata.jsonl` cannot be read or does not fit the receipt.
    """
    body = read_receipt(directory, name)
    body["_name"] = name
    try:
        apply_errata(directory, [body])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReceiptUnreadable(f"the errata for receipt {name} cannot be applied ({type(exc).__name__}: "
                                f"{str(exc)[:200]}); fix {directory / 'errata.jsonl'}") from exc
    del body["_name"]
    return body
