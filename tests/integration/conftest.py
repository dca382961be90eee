"""Fixtures that run the real embedded llama-server and model (installed by scripts/setup.sh)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sme_mcp.config.settings import Settings
from sme_mcp.server.embedded import EmbeddedBackendMissing, embedded_binary, embedded_model_path
from sme_mcp.server.local_lm import LocalServer

READY_TIMEOUT = 300.0
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this folder runs (or needs) the real model: mark it `model`, so `-m "not model"` leaves
    them all out instead of starting a llama-server with the GGUF (two at once on 2 cores crawl)."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.model)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def model_settings() -> Settings:
    """Settings for the real model. Without it the tests skip, unless SME_REQUIRE_MODEL=1 (CI)."""
    settings = Settings()
    try:
        embedded_binary()
        embedded_model_path(settings.cache_dir)
    except EmbeddedBackendMissing as exc:
        if os.environ.get("SME_REQUIRE_MODEL") == "1":
            pytest.fail(f"SME_REQUIRE_MODEL=1 but the embedded backend is missing: {exc}")
        pytest.skip(f"embedded backend not installed ({exc}); run scripts/setup.sh")
    return settings


def start_local(settings: Settings, log_dir: Path, **overrides: object) -> LocalServer:
    local_settings = settings.local.model_copy(update=overrides)
    server = LocalServer(local_settings, settings.cache_dir, log_dir)
    server.start()
    server.base_url(wait=READY_TIMEOUT)
    return server


@pytest.fixture(scope="session")
def launch():
    """`launch(settings, log_dir, **local_overrides)`: start a supervised llama-server and wait for it."""
    return start_local


@pytest.fixture(scope="session")
def local_server(model_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One supervised llama-server shared by the integration tests."""
    server = start_local(model_settings, tmp_path_factory.mktemp("llama-logs"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path, monkeypatch):
    """A fresh data dir (and so a fresh DSPy cache) per test: answers come from the model, not a cache."""
    monkeypatch.setenv("SME_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


ROUTER_ITEMS = [
    ("What is 17 times 23?", "math"),
    ("Write a Python function that reverses a string.", "code"),
    ("Who painted the Mona Lisa?", "general"),
    ("Integrate x**2 from 0 to 3.", "math"),
]


@pytest.fixture
def router_goldsets(tmp_path: Path) -> Path:
    """A tiny router gold set (the same four questions in train, dev and holdout) for optimizer runs."""
    import json

    root = tmp_path / "goldsets"
    (root / "router").mkdir(parents=True)
    for split in ("train", "dev", "holdout"):
        lines = [json.dumps({"id": f"r-{split}-{i}", "domain": "router", "question": q, "label": label})
                 for i, (q, label) in enumerate(ROUTER_ITEMS)]
        (root / "router" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root
