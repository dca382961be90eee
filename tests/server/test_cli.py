"""The sme-mcp command line as a user runs it (no LM: arithmetic items take the exact fast path)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SME_MCP = str(Path(sys.executable).with_name("sme-mcp"))
ITEMS = [("What is 2 + 2?", "4"), ("What is 1/2 + 1/3?", "5/6"), ("12 * 12", "144"), ("7 * 6", "41")]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SME_MCP, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def goldsets(tmp_path: Path) -> Path:
    root = tmp_path / "goldsets"
    (root / "math").mkdir(parents=True)
    lines = [
        json.dumps({"id": f"a{i}", "domain": "math", "question": q, "answer": a}) for i, (q, a) in enumerate(ITEMS)
    ]
    (root / "math" / "holdout.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_eval_gate_exit_code_follows_the_threshold(tmp_path):
    env = {"SME_DATA_DIR": str(tmp_path / "data"), "SME_GOLDSETS_DIR": str(goldsets(tmp_path)),
           "SME_RECEIPTS_DIR": str(tmp_path / "receipts"), "SME_LOCAL__ENABLED": "false"}
    passing = run("eval", "--domain", "math", env={**env, "SME_EVAL_THRESHOLDS": '{"math": 0.7}'})
    failing = run("eval", "--domain", "math", "--json", env={**env, "SME_EVAL_THRESHOLDS": '{"math": 0.9}'})
    assert passing.returncode == 0, passing.stderr
    assert "3/4 = 0.750" in passing.stdout and "95% CI" in passing.stdout and "PASS" in passing.stdout
    assert failing.returncode == 1
    report = json.loads(failing.stdout)
    assert report["passed"] is False and report["threshold"] == 0.9
    assert len(list((tmp_path / "receipts").glob("eval-math-holdout-*.json"))) == 2


def test_eval_on_a_missing_goldset_is_a_clear_error(tmp_path):
    env = {"SME_DATA_DIR": str(tmp_path / "data"), "SME_GOLDSETS_DIR": str(tmp_path / "none"),
           "SME_LOCAL__ENABLED": "false"}
    out = run("eval", "--domain", "code", env=env)
    assert out.returncode == 2 and "no gold set" in out.stderr and "build_goldsets" in out.stderr


def test_ask_fast_path_json_and_logs_stay_off_stdout(tmp_path):
    out = run("ask", "What is 2**64?", "--json", env={"SME_DATA_DIR": str(tmp_path), "SME_LOCAL__ENABLED": "false"})
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)  # stdout is exactly one JSON document
    assert answer["answer"] == str(2**64) and answer["routed_by"] == "fast_path"


def test_ask_without_backends_exits_2_and_says_what_to_set(tmp_path):
    env = {"SME_DATA_DIR": str(tmp_path), "SME_LOCAL__ENABLED": "false", "OPENAI_API_KEY": ""}
    out = run("ask", "Who wrote Hamlet?", env=env)
    assert out.returncode == 2 and out.stdout == ""
    assert "OPENAI_API_KEY is not set" in out.stderr and "disabled" in out.stderr


def shipped_active(domain: str):
    """The active version shipped in compiled/ for `domain`, as its metadata records it."""
    from sme_mcp.config.settings import Settings
    from sme_mcp.experts.programs import ProgramStore

    record = ProgramStore(Settings().shipped_programs_dir).active(domain)
    assert record is not None, f"nothing shipped for {domain} in compiled/"
    return record


def test_rollback_lists_and_rejects_unknown_versions(tmp_path):
    env = {"SME_DATA_DIR": str(tmp_path)}
    listing = run("rollback", "--domain", "code", env=env)  # nothing shipped for code
    assert listing.returncode == 0 and "* base" in listing.stdout
    bad = run("rollback", "--domain", "code", "--version", "v7", env=env)
    assert bad.returncode == 2 and "no version 'v7'" in bad.stderr
    # A fresh data dir starts from the programs shipped in compiled/: the listing marks the shipped
    # active version, with the gate score its metadata records (shipped versions were gated on the
    # first holdout items, so the listing says so rather than calling it a holdout score).
    for domain in ("math", "router"):
        shipped = shipped_active(domain)
        listing = run("rollback", "--domain", domain, env=env)
        assert listing.returncode == 0, listing.stderr
        (active,) = [line for line in listing.stdout.splitlines() if line.startswith("*")]
        assert active.split()[:2] == ["*", shipped.version] and shipped.status in active, active
        expected = shipped.gate_score if shipped.gate_split else shipped.holdout_score
        listed = re.search(r"gate ([0-9.]+) on", active)
        assert listed and float(listed.group(1)) == pytest.approx(expected, abs=5e-4), (active, shipped)
        assert shipped.gate_split or "first holdout items" in active, active
        assert shipped.receipt in active, (active, shipped)
    # The shipped router can be rolled back to base.
    assert run("rollback", "--domain", "router", "--version", "base", env=env).returncode == 0
    assert "* base" in run("rollback", "--domain", "router", env=env).stdout


def test_ingest_a_second_checkout_succeeds_and_a_folder_of_unsupported_files_fails(tmp_path):
    # Two clones of one repo share the data dir: the second ingest finds every file already indexed.
    env = {"SME_DATA_DIR": str(tmp_path / "data")}
    for checkout in ("one", "two"):
        (tmp_path / checkout).mkdir()
        (tmp_path / checkout / "heron.md").write_text("# Heron\n\nThe blue heron nests by the river in spring.\n")
    assert run("ingest", str(tmp_path / "one"), env=env).returncode == 0
    second = run("ingest", str(tmp_path / "two"), env=env)
    assert second.returncode == 0, second.stderr
    assert "1 already indexed elsewhere" in second.stdout
    assert f"from another path (e.g. {(tmp_path / 'one' / 'heron.md').resolve()})" in second.stderr
    (tmp_path / "binaries").mkdir()
    (tmp_path / "binaries" / "blob.exe").write_bytes(b"\x00\x01")
    bad = run("ingest", str(tmp_path / "binaries"), env=env)
    assert bad.returncode == 1 and "skipped" in bad.stderr and "blob.exe" in bad.stderr


@pytest.fixture
def unparseable_lm():
    """An OpenAI-compatible endpoint whose every answer ignores the requested format."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "I will not use your format. Blah."}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_ask_with_unparseable_model_output_is_one_line_and_exit_3(tmp_path, unparseable_lm):
    chain = json.dumps([{"model": "openai/fake-model", "api_base": unparseable_lm, "api_key_env": "SME_TEST_FAKE_KEY"}])
    env = {"SME_DATA_DIR": str(tmp_path), "SME_LOCAL__ENABLED": "false", "SME_LM_CACHE": "false",
           "SME_TEST_FAKE_KEY": "x", "SME_GENERAL__CHAIN": chain}
    out = run("ask", "Who wrote Hamlet?", "--domain", "general", env=env)
    assert out.returncode == 3, out.stderr[-2000:]
    assert out.stdout == ""
    assert "Traceback" not in out.stderr and "AdapterParseError" not in out.stderr, out.stderr[-2000:]
    (line,) = [line for line in out.stderr.splitlines() if line.strip()]
    assert line.startswith("error: ") and "could not be parsed" in line and "Ask again" in line


def test_cli_ingest_reads_any_path_the_user_names_unlike_the_mcp_tool(tmp_path):
    # The user runs the command line as themselves: the client-file boundary (SME_CLIENT_FILES__*) is the
    # MCP tools' only. Here the folder lies outside the allowed ingest folders and is read all the same.
    docs = tmp_path / "elsewhere"
    docs.mkdir()
    (docs / "note.md").write_text("# Note\n\nThe harbour ferry leaves at noon.\n")
    env = {"SME_DATA_DIR": str(tmp_path / "data"), "SME_CLIENT_FILES__INGEST_ROOTS": "[]"}
    out = run("ingest", str(docs), "--json", env=env)
    if out.returncode == 2 and "embedding model" in out.stderr.lower():
        pytest.skip(out.stderr.strip())
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [Path(p).name for p in report["added"]] == ["note.md"] and report["walk_limit"] is None


@pytest.fixture
def endless_lm():
    """An OpenAI-compatible endpoint that streams one token a second for two minutes; sets `asked` on a request."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            asked.set()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            chunk = json.dumps({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                                "choices": [{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]})
            try:
                for _ in range(120):
                    self.wfile.write(f"data: {chunk}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:  # the client went away
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", asked
    server.shutdown()


def test_sigterm_stops_an_eval_mid_answer_even_where_sigint_is_ignored(tmp_path, endless_lm):
    # A command started in the background (`cmd &`, nohup, a job runner) has SIGINT ignored: stopping it with
    # SIGTERM once re-sent SIGINT to itself, which did nothing, and the run went on for minutes.
    import signal
    import time

    url, asked = endless_lm
    chain = json.dumps([{"model": "openai/fake-model", "api_base": url, "api_key_env": "SME_TEST_FAKE_KEY"}])
    gold = tmp_path / "g.jsonl"
    gold.write_text(json.dumps({"id": "g0", "domain": "general", "question": "Who wrote Hamlet?",
                                "answer": "Shakespeare", "answers": ["Shakespeare"]}) + "\n")
    env = {**os.environ, "SME_DATA_DIR": str(tmp_path / "data"), "SME_RECEIPTS_DIR": str(tmp_path / "receipts"),
           "SME_LOCAL__ENABLED": "false", "SME_LM_CACHE": "false", "SME_RETRIEVAL_K": "0",
           "SME_TEST_FAKE_KEY": "x", "SME_GENERAL__CHAIN": chain}
    proc = subprocess.Popen([SME_MCP, "eval", "--domain", "general", "--goldset", str(gold)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert asked.wait(60), "the eval never called the model"
        time.sleep(1)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - stopped < 10
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "cancelled" in err and "Traceback" not in err, err[-2000:]


def test_eval_progress_off_a_terminal_is_a_plain_line_now_and_then_and_at_the_end():
    import io

    from sme_mcp.server.progress import TerminalProgress

    log = io.StringIO()  # not a terminal: a log file or a job runner's pipe
    progress = TerminalProgress("eval code/holdout", stream=log, every=3600)
    for done in range(1, 6):
        progress(done, 5, correct=done // 2)
    progress.close()
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["eval code/holdout: 1/5 ok 0", "eval code/holdout: 5/5 ok 2"]
    assert "\r" not in log.getvalue() and "elapsed, ETA" in lines[0]
