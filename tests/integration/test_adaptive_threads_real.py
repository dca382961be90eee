"""The adaptive pair on the real model and the real load: calls go to `-t 2` on an idle machine, move to
`-t 1 -tb 2` while another program keeps a core busy, and come back when it stops; both answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from sme_mcp.server import cpu_load
from sme_mcp.server.adaptive_local import ALL_CORES, SPARE_CORE, AdaptiveLocal

pytestmark = [pytest.mark.model, pytest.mark.skipif(not cpu_load.available(), reason="needs Linux /proc")]


def foreign_busy_process() -> int:
    """A busy loop that is not ours (its shell exits and init adopts it), as another program would be."""
    out = subprocess.run(["sh", "-c", f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def ask(url: str) -> dict:
    resp = httpx.post(f"{url}/chat/completions", timeout=300, json={
        "model": "local", "temperature": 0.0, "max_tokens": 8,
        "messages": [{"role": "user", "content": "What is the capital of France? One word."}]})
    resp.raise_for_status()
    return resp.json()


def wait_for_layout(pair: AdaptiveLocal, layout: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name, url = pair.ready_deployments()[0]
        if name == f"local:{layout}":
            return url
        time.sleep(0.5)
    raise AssertionError(f"calls did not move to {layout}: {pair.status()}")


def test_calls_follow_the_machine_s_load_on_the_real_model(model_settings, tmp_path):
    pair = AdaptiveLocal(model_settings.local.model_copy(update={"max_restarts": 0}), model_settings.cache_dir,
                         tmp_path / "logs", cpus=2)
    pair.start()
    try:
        for server in pair.servers.values():
            server.base_url(wait=300)
        assert "-t 2 " in (tmp_path / "logs" / "llama-server.log").read_text()
        assert "-t 1 -np 1 --alias local -tb 2" in (tmp_path / "logs" / "llama-server-spare-core.log").read_text()
        idle_url = wait_for_layout(pair, ALL_CORES, timeout=30)  # loading both took the cores: wait for calm
        assert "Paris" in ask(idle_url)["choices"][0]["message"]["content"]
        pid = foreign_busy_process()
        try:
            busy_url = wait_for_layout(pair, SPARE_CORE)
            assert busy_url != idle_url
            assert "Paris" in ask(busy_url)["choices"][0]["message"]["content"]
        finally:
            os.kill(pid, signal.SIGKILL)
        assert wait_for_layout(pair, ALL_CORES) == idle_url
        assert pair.switches >= 2
    finally:
        pair.stop()
