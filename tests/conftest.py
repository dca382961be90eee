"""Shared fixtures: the anyio backend and a throwaway data directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sme_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Points SME_DATA_DIR at a fresh temporary directory for one test."""
    path = tmp_path / "sme-data"
    monkeypatch.setenv("SME_DATA_DIR", str(path))
    return path
