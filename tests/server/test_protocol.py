"""MCP protocol tests through the in-memory client (no LM needed)."""

from __future__ import annotations

import pytest
from mcp import Client

from sme_mcp.server.app import build_server

SYMPY_TOOLS = {
    "evaluate", "simplify", "expand", "factor", "solve", "differentiate", "integrate", "limit", "series",
    "summation", "matrix_determinant", "matrix_inverse", "matrix_eigenvalues",
}


@pytest.fixture
def service(no_backend_service):
    return no_backend_service


@pytest.mark.anyio
async def test_tools_list_has_every_tool_with_schema_and_annotations(service):
    async with Client(build_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert SYMPY_TOOLS | {"ask_expert", "list_experts"} <= set(tools)
    for name in SYMPY_TOOLS:
        tool = tools[name]
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
        assert tool.annotations.open_world_hint is False
        assert tool.output_schema is not None and "latex" in tool.output_schema["properties"]
        assert tool.description
    integrate = tools["integrate"].input_schema
    assert integrate["required"] == ["expression"]
    assert {"expression", "variable", "lower", "upper"} <= set(integrate["properties"])
    ask = tools["ask_expert"].input_schema
    assert ask["required"] == ["question"]
    assert "answer" in tools["ask_expert"].output_schema["properties"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "args", "result", "latex"),
    [
        ("evaluate", {"expression": "1/2 + 1/3"}, "5/6", r"\frac{5}{6}"),
        ("evaluate", {"expression": "2**100"}, "1267650600228229401496703205376", None),
        ("differentiate", {"expression": "x**3*sin(x)"}, "x**3*cos(x) + 3*x**2*sin(x)", None),
        ("differentiate", {"expression": "x**4", "order": 2}, "12*x**2", None),
        ("integrate", {"expression": "x**2", "lower": "0", "upper": "1"}, "1/3", None),
        ("integrate", {"expression": "cos(x)"}, "sin(x)", None),
        ("integrate", {"expression": "exp(-x**2)", "lower": "-oo", "upper": "oo"}, "sqrt(pi)", None),
        ("solve", {"equations": ["x**2 = 4"]}, "x = -2; x = 2", None),
        ("solve", {"equations": ["x + y = 3", "x - y = 1"]}, "x = 2, y = 1", None),
        ("limit", {"expression": "sin(x)/x", "point": "0"}, "1", None),
        ("limit", {"expression": "(1 + 1/n)**n", "variable": "n", "point": "oo"}, "E", None),
        ("series", {"expression": "sin(x)", "order": 4}, "x - x**3/6 + O(x**4)", None),
        ("summation", {"expression": "k", "variable": "k", "lower": "1", "upper": "n"}, "n*(n + 1)/2", None),
        ("summation", {"expression": "1/k**2", "lower": "1", "upper": "oo"}, "pi**2/6", None),
        ("simplify", {"expression": "sin(x)**2 + cos(x)**2"}, "1", None),
        ("expand", {"expression": "(x + 1)**2"}, "x**2 + 2*x + 1", None),
        ("factor", {"expression": "x**2 - 1"}, "(x - 1)*(x + 1)", None),
        ("factor", {"expression": "360"}, "2**3*3**2*5", None),
        ("matrix_determinant", {"matrix": "[[1, 2], [3, 4]]"}, "-2", None),
        ("matrix_inverse", {"matrix": "[[2, 0], [0, 4]]"}, "[[1/2, 0], [0, 1/4]]", None),
    ],
)
async def test_sympy_tools_give_exact_results(service, tool, args, result, latex):
    async with Client(build_server(service)) as client:
        out = await client.call_tool(tool, args)
    assert not out.is_error, out.content
    assert out.structured_content["result"] == result
    if latex is not None:
        assert out.structured_content["latex"] == latex


@pytest.mark.anyio
async def test_matrix_eigenvalues_with_multiplicity(service):
    async with Client(build_server(service)) as client:
        out = await client.call_tool("matrix_eigenvalues", {"matrix": "[[2, 1], [1, 2]]"})
        repeated = await client.call_tool("matrix_eigenvalues", {"matrix": "[[5, 0], [0, 5]]"})
    assert sorted(out.structured_content["result"].split(", ")) == ["1", "3"]
    assert repeated.structured_content["result"] == "5 (multiplicity 2)"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "args", "fragment"),
    [
        ("evaluate", {"expression": "__import__('os').system('true')"}, "only calls of named functions"),
        ("evaluate", {"expression": "9**9**9"}, "limit"),
        ("evaluate", {"expression": "1 +"}, "not a valid expression"),
        ("differentiate", {"expression": "x*y"}, "several variables"),
        ("matrix_inverse", {"matrix": "[[1, 2], [2, 4]]"}, "singular"),
        ("matrix_determinant", {"matrix": "[[1, 2, 3]]"}, "square"),
        ("integrate", {"expression": "x", "lower": "0"}, "both"),
    ],
)
async def test_bad_input_is_a_tool_error_with_an_actionable_message(service, tool, args, fragment):
    async with Client(build_server(service)) as client:
        out = await client.call_tool(tool, args)
        assert out.is_error
        assert fragment in out.content[0].text
        again = await client.call_tool("evaluate", {"expression": "2+2"})
    assert again.structured_content["result"] == "4"


@pytest.mark.anyio
async def test_ask_expert_arithmetic_takes_the_exact_fast_path_without_any_lm(service):
    async with Client(build_server(service)) as client:
        out = await client.call_tool("ask_expert", {"question": "What is 1/2 + 1/3?"})
        big = await client.call_tool("ask_expert", {"question": "2**200 - 1"})
    assert not out.is_error, out.content
    answer = out.structured_content
    assert answer["answer"] == "5/6"
    assert answer["domain"] == "math" and answer["routed_by"] == "fast_path"
    assert answer["backend"] == "sympy" and answer["tools_used"] == ["evaluate"]
    assert big.structured_content["answer"] == str(2**200 - 1)


@pytest.mark.anyio
async def test_ask_expert_without_any_backend_says_what_to_set(service):
    async with Client(build_server(service)) as client:
        out = await client.call_tool("ask_expert", {"question": "Who wrote Hamlet?", "domain": "general"})
    assert out.is_error
    text = out.content[0].text
    assert "No LM backend" in text
    assert "SME_TEST_MISSING_KEY is not set" in text
    assert "no local server" in text
    assert "scripts/setup.sh" in text


@pytest.mark.anyio
async def test_ask_expert_rejects_unknown_domain_and_oversized_question(service):
    async with Client(build_server(service)) as client:
        bad_domain = await client.call_tool("ask_expert", {"question": "hi", "domain": "poetry"})
        huge = await client.call_tool("ask_expert", {"question": "x" * 9000})
        empty = await client.call_tool("ask_expert", {"question": "   "})
    assert bad_domain.is_error and "domain" in bad_domain.content[0].text
    assert huge.is_error and "limit is 8000" in huge.content[0].text
    assert empty.is_error and "non-empty" in empty.content[0].text


@pytest.mark.anyio
async def test_list_experts_reports_modules_versions_and_backends(service):
    async with Client(build_server(service)) as client:
        out = await client.call_tool("list_experts", {})
    assert not out.is_error
    experts = {e["name"]: e for e in out.structured_content["experts"]}
    assert set(experts) == {"router", "math", "code", "general"}
    assert "ReAct" in experts["math"]["module"]
    shipped = service.programs.active("math")  # seeded from compiled/math
    assert shipped is not None and experts["math"]["program_version"] == shipped.version
    # The shipped version was gated on the first holdout items: that score is its gate score, and its
    # holdout score comes only from an evaluation that left those items out.
    from sme_mcp.optimize.selection import clean_holdout_score

    expected_gate = shipped.gate_score if shipped.gate_split else shipped.holdout_score
    assert experts["math"]["gate_score"] == expected_gate
    clean = clean_holdout_score(service.settings.receipts_dir, "math", shipped.version)
    assert experts["math"]["holdout_score"] == (clean["score"] if clean else None)
    assert experts["code"]["program_version"] is None and experts["code"]["gate_score"] is None
    assert experts["general"]["backends"] == ["local", "openai/gpt-4o-mini"]
    assert out.structured_content["local_lm"] is None
