"""The built wheel works on its own: installed non-editable into a fresh venv outside the checkout.

Builds the wheel from this checkout, installs it (with its pinned dependencies, resolved from the package
index) into a new virtualenv under a temp dir, and runs `sme-mcp serve --no-local` there over stdio with
the SDK's client. Nothing of the checkout is on that server's path: it must find the gold sets, the
shipped programs, the project's receipts and the demo corpus inside the installed package, and write its
own receipts under the data dir.

uv (a dev dependency) installs the dependencies in seconds from its cache; without it pip does the same
in about 2.5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from sme_mcp.config.settings import PROJECT_DIR

# A build or install that fails for one of these reasons cannot run here (no package index); any other failure
# is a bug in the packaging and fails the test.
NO_INDEX = ("Could not find a version that satisfies", "No matching distribution", "Failed to establish a new "
            "connection", "Temporary failure in name resolution", "Failed to fetch", "error sending request")


def run(cmd: list[str], what: str, timeout: float = 300, **kwargs: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    if out.returncode != 0:
        text = out.stdout + out.stderr
        if any(reason in text for reason in NO_INDEX):
            pytest.skip(f"{what} needs the package index, which is not reachable here: {text.strip()[-500:]}")
        raise AssertionError(f"{what} failed (exit {out.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    return out


def clean_env(home: Path) -> dict[str, str]:
    """An environment with no trace of the checkout or its venv: no PYTHONPATH, a fresh HOME and data dir."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "UV_CACHE_DIR",
                                                         "PIP_CERT", "PIP_FIND_LINKS", "SSL_CERT_FILE")}
    keep["PATH"] = os.pathsep.join(p for p in keep.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                   if not p.startswith(str(PROJECT_DIR)))
    if "UV_CACHE_DIR" not in keep:  # the real HOME's uv cache, or every run downloads the dependencies again
        keep["UV_CACHE_DIR"] = str(Path.home() / ".cache" / "uv")
    return {**keep, "HOME": str(home), "SME_DATA_DIR": str(home / "data"), "SME_CACHE_DIR": str(home / "cache")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(venv, environment, wheel): the wheel built from this checkout, installed into a fresh venv."""
    root = tmp_path_factory.mktemp("wheel")
    home = root / "home"
    home.mkdir()
    env = clean_env(home)
    started = time.monotonic()
    # From a copy of the sources: setuptools builds in the source folder, and a stale build/ there would end up
    # in the wheel (files deleted from the checkout included); the checkout also stays free of build output.
    source = root / "source"
    shutil.copytree(PROJECT_DIR, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "bench"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(source)],
        "building the wheel", env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    wheel = next((root / "dist").glob("sme_mcp-*.whl"))
    venv = root / "venv"
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        run([uv, "venv", "-q", "--python", sys.executable, str(venv)], "creating the venv", env=env, cwd=root)
        run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel)],
            "installing the wheel with uv", env=env, cwd=root)
    else:
        run([sys.executable, "-m", "venv", str(venv)], "creating the venv", env=env, cwd=root)
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], "installing the wheel with pip",
            timeout=900, env=env, cwd=root)
    print(f"wheel {wheel.stat().st_size / 1e6:.2f} MB built and installed in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    return venv, env, wheel


def test_the_wheel_carries_the_data_and_no_checkout_files(installed):
    _, _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    for goldset in ("math", "code", "general", "router"):
        for split in ("train", "dev", "holdout"):
            assert f"sme_mcp/goldsets/{goldset}/{split}.jsonl" in names
    assert {"sme_mcp/compiled/math/active.json", "sme_mcp/compiled/router/v1.json"} <= set(names)
    assert "sme_mcp/docs/demo_corpus/questions.jsonl" in names and "sme_mcp/docs/demo_corpus/NOTICE" in names
    assert sum(n.startswith("sme_mcp/docs/demo_corpus/articles/") for n in names) == len(
        list((PROJECT_DIR / "docs" / "demo_corpus" / "articles").glob("*.md")))
    assert any(n.startswith("sme_mcp/receipts/optimize-math-") for n in names)  # which holdout items chose math v1
    assert not any(n.startswith(("sme_mcp/tests/", "tests/", "bench/", "sme_mcp/bench/")) for n in names)


def test_installed_package_finds_its_data_and_writes_receipts_under_the_data_dir(installed):
    venv, env, _ = installed
    script = (
        "import json, sys\n"
        "from sme_mcp.config import settings as s\n"
        "from sme_mcp.optimize.receipts import write_receipt\n"
        "from sme_mcp.optimize.selection import holdout_items_that_chose\n"
        "cfg = s.Settings()\n"
        "path = write_receipt(cfg.receipts_dir, 'eval', 'probe', {'report': {}})\n"
        "print(json.dumps({'project': str(s.PROJECT_DIR), 'in_checkout': s.IN_CHECKOUT,\n"
        "    'receipt': str(path), 'commit': json.loads(path.read_text())['git_commit'],\n"
        "    'chose_math': sum(map(len, holdout_items_that_chose(cfg.receipt_dirs(), 'math').values())),\n"
        "    'ingest_roots': [str(p) for p in cfg.client_files.ingest_roots],\n"
        "    'path': [p for p in sys.path if p.startswith(sys.argv[1])]}))\n"
    )
    out = run([str(venv / "bin" / "python"), "-c", script, str(PROJECT_DIR)], "the installed package", env=env,
              cwd=Path(env["HOME"]))
    got = json.loads(out.stdout)
    assert got["project"].startswith(str(venv)) and got["in_checkout"] is False, got
    assert got["path"] == [], got  # nothing of the checkout is importable
    assert got["receipt"].startswith(env["SME_DATA_DIR"] + "/receipts/"), got  # never into site-packages
    assert got["commit"] is None, got  # no checkout, no commit (the sme-mcp version is in the receipt)
    assert got["chose_math"] >= 60, got  # the shipped receipts still exclude the items that chose math v1
    assert got["ingest_roots"] == [got["project"] + "/docs/demo_corpus"], got


@pytest.mark.anyio
async def test_installed_server_lists_tools_and_calls_sympy_over_stdio(installed):
    venv, env, _ = installed
    params = StdioServerParameters(command=str(venv / "bin" / "sme-mcp"), args=["serve", "--no-local"], env=env,
                                   cwd=env["HOME"])
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"ask_expert", "differentiate", "run_eval", "ingest_documents"} <= names
        result = await client.call_tool("differentiate", {"expression": "x**3*sin(x)", "variable": "x"})
        assert not result.is_error, result
        assert result.structured_content["result"] == "x**3*cos(x) + 3*x**2*sin(x)"
        experts = await client.call_tool("list_experts", {})
        versions = {e["name"]: e["program_version"] for e in experts.structured_content["experts"]}
        assert versions["math"] == "v1" and versions["router"] == "v1", versions  # the shipped compiled programs
        index = await client.read_resource("receipt://index")
        assert any(name.startswith("optimize-math-") for name in json.loads(index.contents[0].text))
