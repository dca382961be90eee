"""MCP Inspector's CLI (TypeScript SDK, protocol 2025-11-25) against a real `sme-mcp serve --no-local`.

The Inspector comes from npm through `npx` (about 30 s the first time, 5 s from npm's cache); without
Node or the npm registry these tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from test_transports import SME_MCP, free_port, start_http

INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"  # its TypeScript SDK 1.32.2 speaks 2025-11-25 at the latest
NO_REGISTRY = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "network request", "E404")


def inspector(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node 20+) is not installed: MCP Inspector cannot run")
    out = subprocess.run([npx, "-y", INSPECTOR, "--cli", *args], capture_output=True, text=True, timeout=240,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0 and any(reason in out.stderr for reason in NO_REGISTRY):
        pytest.skip(f"the npm registry is not reachable, MCP Inspector cannot be fetched: {out.stderr[-300:]}")
    assert out.returncode == 0, f"inspector {' '.join(args)} failed:\n{out.stdout[-1000:]}\n{out.stderr[-2000:]}"
    return json.loads(out.stdout)


def test_inspector_over_stdio_lists_tools_and_calls_one(tmp_path):
    env = {"SME_DATA_DIR": str(tmp_path)}
    tools = inspector(SME_MCP, "serve", "--no-local", "--method", "tools/list", env=env)
    assert {"ask_expert", "differentiate", "run_eval"} <= {t["name"] for t in tools["tools"]}  # type: ignore[union-attr]
    call = inspector(SME_MCP, "serve", "--no-local", "--method", "tools/call", "--tool-name", "differentiate",
                     "--tool-arg", "expression=x**3*sin(x)", env=env)
    assert call["isError"] is False and call["structuredContent"]["result"] == "x**3*cos(x) + 3*x**2*sin(x)"  # type: ignore[index]


def test_inspector_over_streamable_http_lists_prompts_and_calls_a_tool(tmp_path):
    port = free_port()
    proc = start_http(port, "--transport", "http", env={"SME_DATA_DIR": str(tmp_path)})
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        prompts = inspector(url, "--transport", "http", "--method", "prompts/list")
        assert "evaluate_then_optimize" in {p["name"] for p in prompts["prompts"]}  # type: ignore[union-attr]
        call = inspector(url, "--transport", "http", "--method", "tools/call", "--tool-name", "evaluate",
                         "--tool-arg", "expression=6*7")
        assert call["structuredContent"]["result"] == "42"  # type: ignore[index]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
