from __future__ import annotations

import pytest

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService


def no_backend_settings() -> Settings:
    """Settings whose every chain is unusable: no local server, a cloud model without its key."""
    settings = Settings()
    chain = RoleSettings(chain=[LMSpec(), LMSpec(model="openai/gpt-4o-mini", api_key_env="SME_TEST_MISSING_KEY")])
    for role in ("router", "math", "code", "general"):
        setattr(settings, role, chain)
    return settings


@pytest.fixture
def no_backend_service(tmp_path):
    """An ExpertService with no usable LM backend, on a fresh data dir (it starts from the shipped programs)."""
    settings = no_backend_settings()
    settings.data_dir = tmp_path / "data"
    svc = ExpertService(settings, local=None)
    yield svc
    svc.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own data dir, so no test reads another's programs or caches."""
    monkeypatch.setenv("SME_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"
