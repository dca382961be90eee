"""The llama-server supervisor with the real binary and model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from sme_mcp.server.local_lm import LocalServer


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_supervisor_serves_health_and_models(local_server: LocalServer):
    url = local_server.base_url()
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=5) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(url + "/models", timeout=5) as resp:
        models = json.load(resp)
    assert any(m["id"] == "local" for m in models["data"])
    status = local_server.status()
    assert status["state"] == "ready" and status["pid"] and Path(status["log"]).is_file()


def test_restarts_after_crash_and_stops_cleanly(model_settings, launch, tmp_path):
    server = launch(model_settings, tmp_path)
    try:
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: server.pid not in (None, first) and server.state == "ready", 300)
        assert server.restarts == 1
        second = server.pid
        assert second is not None
        server.base_url(wait=0)  # ready again
    finally:
        server.stop()
    assert not alive(second)
    assert server.state == "stopped"


def test_no_orphan_when_parent_is_sigkilled(model_settings, tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from sme_mcp.config.settings import Settings
        from sme_mcp.server.local_lm import LocalServer
        s = Settings()
        server = LocalServer(s.local, s.cache_dir, Path({str(tmp_path)!r}))
        server.start()
        server.base_url(wait=300)
        print(server.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_until(lambda: not alive(child), 15), f"llama-server {child} outlived its killed parent"
    finally:
        parent.kill()


def test_unloadable_model_fails_with_the_log_tail(model_settings, tmp_path):
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_text("this is not a GGUF file\n")
    settings = model_settings.local.model_copy(update={"model_path": bogus, "max_restarts": 1})
    server = LocalServer(settings, model_settings.cache_dir, tmp_path)
    server.start()
    try:
        assert wait_until(lambda: server.state == "failed", 60)
        assert "exited" in server.reason and "log lines (full log:" in server.reason
        with pytest.raises(Exception, match="failed"):
            server.base_url(wait=0)
    finally:
        server.stop()


def test_missing_binary_is_reported_not_raised(model_settings, tmp_path):
    settings = model_settings.local.model_copy(update={"binary": tmp_path / "no-such-llama-server"})
    server = LocalServer(settings, model_settings.cache_dir, tmp_path)
    server.start()
    assert wait_until(lambda: server.state == "failed", 10)
    assert "is not an executable" in server.reason
    server.stop()
