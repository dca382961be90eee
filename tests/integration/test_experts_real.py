"""The experts end to end on the real embedded model, through the real supervisor."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import sympy as sp
from mcp import Client

from sme_mcp.config.settings import ClientFilesSettings, LMSpec, RoleSettings, Settings
from sme_mcp.experts.lm import NoBackendError
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server
from sme_mcp.server.local_lm import LocalServer
from sme_mcp.tools.parse import parse_expression
from sme_mcp.tools.sandbox import run_python


def local_only(settings: Settings, *extra: LMSpec) -> Settings:
    """The settings with every role's chain set to the local server, then `extra` fallbacks."""
    settings = settings.model_copy(deep=True)
    for role in ("router", "math", "code", "general"):
        setattr(settings, role, RoleSettings(chain=[LMSpec(), *extra]))
    return settings


@pytest.fixture
def service(model_settings, local_server):
    svc = ExpertService(local_only(Settings()), local_server)
    yield svc
    svc.close()


def test_arithmetic_takes_the_fast_path_and_never_calls_the_model(service):
    answer = service.ask("What is 123456789 * 987654321 + 1/7?")
    assert answer.routed_by == "fast_path" and answer.backend == "sympy"
    assert sp.Rational(answer.answer) == sp.Rational(123456789 * 987654321) + sp.Rational(1, 7)


@pytest.mark.anyio
async def test_a_plain_derivative_request_is_exact_with_no_model_call(service):
    # Through the MCP tool, as a client would ask it (the README's own example).
    async with Client(build_server(service)) as client:
        result = await client.call_tool("ask_expert", {"question": "What is the derivative of x**3*sin(x)?"})
    assert not result.is_error, result.content
    answer = result.structured_content
    assert answer["domain"] == "math" and answer["routed_by"] == "fast_path" and answer["backend"] == "sympy"
    assert answer["tools_used"] == ["differentiate"] and answer["cost"]["lm_calls"] == 0
    assert answer["verification"]["method"] == "exact"
    x = sp.Symbol("x")
    assert sp.simplify(parse_expression(answer["answer"]) - sp.diff(x**3 * sp.sin(x), x)) == 0


def test_a_symbolic_question_in_prose_is_solved_with_the_react_tools(service):
    answer = service.ask("Using calculus, what is the rate of change of x**3*sin(x) with respect to x?", domain="math")
    assert answer.domain == "math" and answer.backend == "local" and answer.model.endswith(".gguf")
    assert "differentiate" in answer.tools_used
    assert answer.cost is not None and answer.cost.lm_calls >= 1 and answer.cost.completion_tokens > 0
    x = sp.Symbol("x")
    got = parse_expression(answer.answer.replace("\\", ""))
    assert sp.simplify(got - sp.diff(x**3 * sp.sin(x), x)) == 0


# Run in the sandbox with the generated code: loads it as a module (so a `__main__` demo block does not run),
# then checks the behaviour the question asks for.
PALINDROME_CHECKS = """
namespace = {"__name__": "generated"}
exec(compile(CODE, "generated.py", "exec"), namespace)
for s, expected in [("racecar", True), ("Racecar", True), ("AbBa", True), ("a", True),
                    ("python", False), ("ab", False), ("Abca", False)]:
    got = namespace["is_palindrome"](s)
    assert got == expected, f"is_palindrome({s!r}) returned {got!r}, expected {expected!r}"
print("checks passed")
"""


def test_code_question_returns_python_that_does_what_was_asked(service):
    answer = service.ask(
        "Write a Python function is_palindrome(s) that returns True when the string s reads the same "
        "backwards, ignoring case.", domain="code",
    )
    assert answer.domain == "code" and answer.backend == "local"
    assert answer.routed_by == "explicit" and answer.confidence is None  # nothing was routed
    assert answer.code and "def is_palindrome" in answer.code
    assert answer.answer.startswith("```python")
    result = run_python(f"CODE = {answer.code!r}\n{PALINDROME_CHECKS}", timeout_s=30)
    assert result.ok and result.stdout.strip().endswith("checks passed"), (
        f"generated code:\n{answer.code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def test_general_question(service):
    answer = service.ask("What is the capital city of France?")
    assert answer.domain == "general" and answer.routed_by in ("nearest_neighbours", "router")
    assert "paris" in answer.answer.lower()
    # The router chose the domain, so it must say how sure it was: ExpertService.ask leaves confidence None
    # only for an explicit domain or a failed router (routed_by "router_fallback"); an exact answer has 1.0.
    assert answer.confidence is not None and 0.0 <= answer.confidence <= 1.0, answer.confidence


def test_falls_back_to_the_next_backend_when_the_local_server_is_dead(model_settings, launch, tmp_path, monkeypatch):
    fallback = launch(model_settings, tmp_path / "b")
    primary = launch(model_settings, tmp_path / "a", max_restarts=0)
    monkeypatch.setenv("SME_TEST_FALLBACK_KEY", "local")
    spec = LMSpec(model="openai/local", api_base=fallback.base_url(), api_key_env="SME_TEST_FALLBACK_KEY")
    svc = ExpertService(local_only(Settings(), spec), primary)
    try:
        os.kill(primary.pid, signal.SIGKILL)  # type: ignore[arg-type]
        answer = svc.ask("Name the largest planet in the solar system.", domain="general")
    finally:
        svc.close()
        primary.stop()
        fallback.stop()
    assert answer.backend == spec.label
    assert "jupiter" in answer.answer.lower()


def test_call_survives_the_local_server_being_killed_mid_call(model_settings, launch, tmp_path):
    local = launch(model_settings, tmp_path)
    svc = ExpertService(local_only(Settings()), local)
    result: dict[str, object] = {}

    def ask() -> None:
        try:
            result["answer"] = svc.ask("Explain in two sentences what a hash table is.", domain="general")
        except Exception as exc:  # recorded and asserted below
            result["error"] = exc

    worker = threading.Thread(target=ask)
    try:
        first = local.pid
        worker.start()
        time.sleep(3)  # the request is in flight
        os.kill(first, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join(timeout=400)
        assert not worker.is_alive()
        assert "error" not in result, result.get("error")
        answer = result["answer"]
        assert answer.backend == "local" and answer.answer  # type: ignore[attr-defined]
        assert local.restarts >= 1 and local.pid not in (None, first)
    finally:
        svc.close()
        local.stop()


def test_no_backend_at_all_is_one_clear_error(model_settings, tmp_path):
    broken = model_settings.local.model_copy(update={"binary": tmp_path / "missing"})
    local = LocalServer(broken, model_settings.cache_dir, tmp_path)
    local.start()
    cloud = LMSpec(model="openai/gpt-4o-mini", api_key_env="SME_NO_SUCH_KEY")
    svc = ExpertService(local_only(Settings(), cloud), local)
    try:
        with pytest.raises(NoBackendError) as err:
            svc.ask("Who wrote Hamlet?", domain="general")
    finally:
        svc.close()
        local.stop()
    message = str(err.value)
    assert "local llama-server is failed" in message and "is not an executable" in message
    assert "SME_NO_SUCH_KEY is not set" in message


@pytest.mark.anyio
async def test_cancelled_run_eval_stops_and_writes_no_receipt(local_server, tmp_path):
    import json as _json
    import urllib.request

    import anyio

    goldset = tmp_path / "g.jsonl"
    questions = [f"Name a famous person born in the year {1900 + i}." for i in range(12)]
    goldset.write_text("\n".join(
        _json.dumps({"id": f"g{i}", "domain": "general", "question": q, "answer": "x", "answers": ["x"]})
        for i, q in enumerate(questions)) + "\n")
    settings = local_only(Settings(receipts_dir=tmp_path / "receipts",
                                   client_files=ClientFilesSettings(goldset_roots=[tmp_path])))
    service = ExpertService(settings, local_server)
    progressed: list[float] = []
    try:
        async with Client(build_server(service, local_server)) as client:
            with anyio.CancelScope() as scope:

                async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                    progressed.append(progress)
                    scope.cancel()  # the client gives up after the first item

                await client.call_tool("run_eval", {"domain": "general", "goldset_path": str(goldset)},
                                       progress_callback=on_progress)
            assert scope.cancelled_caught
            # The server stays usable while the cancelled eval winds down.
            ok = await client.call_tool("evaluate", {"expression": "6*7"})
            assert ok.structured_content["result"] == "42"
        slots = local_server.base_url().removesuffix("/v1") + "/slots"

        def idle() -> bool:
            with urllib.request.urlopen(slots, timeout=5) as resp:
                return not any(s["is_processing"] for s in _json.load(resp))

        deadline = time.monotonic() + 120  # at most the in-flight item finishes
        while not idle() and time.monotonic() < deadline:
            time.sleep(1)
        assert idle(), "the eval kept calling the model after it was cancelled"
        time.sleep(5)
        assert idle()
    finally:
        service.close()
    assert progressed and progressed[0] == 1
    assert not (tmp_path / "receipts").exists() or not list((tmp_path / "receipts").iterdir())
