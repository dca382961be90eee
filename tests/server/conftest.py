from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own data dir, so no test reads another's programs or caches."""
    monkeypatch.setenv("SME_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"
