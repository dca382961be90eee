"""ask_expert's progress, cost and failure reporting through the in-memory MCP client (no LM)."""

from __future__ import annotations

import threading

import dspy
import pytest
from mcp import Client

from sme_mcp.experts.answer_trace import AnswerCancelled, AnswerTrace
from sme_mcp.server.app import build_server, describe_failure


@pytest.fixture
def service(no_backend_service):
    return no_backend_service


@pytest.mark.anyio
async def test_exact_request_is_answered_by_sympy_with_progress_and_no_lm_call(service):
    messages: list[str] = []

    async def progress(done, total, message):
        messages.append(message)

    async with Client(build_server(service)) as client:
        out = await client.call_tool("ask_expert", {"question": "What is the derivative of x**3*sin(x)?"},
                                     progress_callback=progress)
    assert not out.is_error, out.content
    answer = out.structured_content
    assert answer["answer"] == "x**3*cos(x) + 3*x**2*sin(x)"
    assert answer["routed_by"] == "fast_path" and answer["backend"] == "sympy"
    assert answer["cost"]["lm_calls"] == 0 and answer["cost"]["tool_calls"] == ["differentiate"]
    assert messages and messages[0].startswith("received")


@pytest.mark.anyio
async def test_an_explicit_domain_other_than_math_skips_the_exact_path(service):
    async with Client(build_server(service)) as client:
        out = await client.call_tool("ask_expert", {"question": "Solve x**2 = 4", "domain": "general"})
    assert out.is_error and "No LM backend" in out.content[0].text


def test_parse_failures_and_unknown_failures_are_described_not_bare():
    from dspy.utils.exceptions import AdapterParseError

    parse = AdapterParseError(adapter_name="JSONAdapter", signature=dspy.Signature("q -> a"), lm_response="{",
                              message="bad")
    text = describe_failure(parse)
    assert "could not be parsed" in text and "Ask again" in text
    other = describe_failure(KeyError("trajectory"))
    assert "KeyError" in other and "still running" in other


def test_a_cancel_during_the_answer_stops_it_at_its_next_model_call(service, monkeypatch):
    cancel = threading.Event()

    def progress(message: str) -> None:
        if message.startswith("code expert"):
            cancel.set()  # the client cancels once the expert has started

    lm = dspy.utils.DummyLM([{"reasoning": "r", "code": "x = 1", "explanation": "e"}])
    # No backend is configured here: run the call on the DummyLM instead of the (empty) chain.
    monkeypatch.setattr(service.chains["code"], "run", lambda call: (call(), None))
    with dspy.context(lm=lm), pytest.raises(AnswerCancelled):
        service.ask("Write a function that returns 1", "code", trace=AnswerTrace(progress=progress, cancel=cancel))
    assert lm.history == []  # the model was never called


@pytest.mark.anyio
async def test_an_unexpected_failure_of_any_tool_is_named_not_bare(service, monkeypatch):
    def broken() -> list:
        raise KeyError("programs")

    monkeypatch.setattr(service, "experts", broken)  # a failure no tool handler anticipated
    async with Client(build_server(service)) as client:
        out = await client.call_tool("list_experts", {})
        again = await client.call_tool("evaluate", {"expression": "2+2"})
    assert out.is_error
    text = out.content[0].text
    assert "list_experts failed unexpectedly (KeyError" in text and "still running" in text
    assert again.structured_content["result"] == "4"
