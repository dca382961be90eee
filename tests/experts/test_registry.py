"""The expert registry: built-ins and declared experts through one path; broken declarations refused at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from sme_mcp.config.settings import PROJECT_DIR, Settings
from sme_mcp.experts.registry import ExpertRegistry, ExpertSpec, RegistryError
from sme_mcp.experts.service import ExpertService, InvalidQuestion
from sme_mcp.optimize.goldsets import GoldItem
from sme_mcp.optimize.scoring import score_item
from sme_mcp.server.tool_inputs import ExpertNames

EXAMPLES = PROJECT_DIR / "experts" / "examples"


def goldset(folder: Path, questions: list[str], answer: str = "B") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "holdout"):
        (folder / f"{split}.jsonl").write_text("".join(
            json.dumps({"id": f"{split}-{i}", "domain": "bird", "question": q, "answer": answer}) + "\n"
            for i, q in enumerate(questions)))
    return folder


def declare(tmp_path: Path, body: str, name: str = "bird.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


BIRD = """
[expert]
name = "bird"
description = "Identifies birds from a description"
instructions = "Name the bird the question describes."
module = "predict"
metric = "exact"
threshold = 0.2
goldset = "birds"
"""


def test_the_builtin_experts_register_like_any_other():
    registry = ExpertRegistry.builtin()
    assert registry.names == ("math", "code", "general")
    assert registry.roles == ("router", "math", "code", "general")
    assert [registry.metric(n) for n in registry.roles] == ["route", "sympy", "code_tests", "exact_f1"]
    assert registry.threshold("math", {}) == 0.3 and registry.threshold("math", {"math": 0.5}) == 0.5
    assert registry.threshold("router", {}) is None  # the router's comes from SME_EVAL_THRESHOLDS only
    with pytest.raises(RegistryError, match="unknown expert 'poetry'; use one of: math, code, general"):
        registry.get("poetry")


@pytest.mark.parametrize(("body", "why"), [
    (BIRD.replace('metric = "exact"', 'metric = "vibes"'), "unknown metric 'vibes'; use one of: code_tests"),
    (BIRD.replace('name = "bird"', 'name = "math"'), "an expert named 'math' is already registered (built-in)"),
    (BIRD.replace('name = "bird"', 'name = "router"'), "'router' is the router's own name"),
    (BIRD.replace('name = "bird"', 'name = "Bird Expert"'), "the name must be 2-32 lowercase letters"),
    (BIRD.replace('module = "predict"', 'module = "react"'), "a react module needs tools"),
    (BIRD.replace('module = "predict"', 'modul = "predict"'), "modul: Extra inputs are not permitted"),
    (BIRD.replace('threshold = 0.2', 'threshold = 2'), "threshold: Input should be less than or equal to 1"),
    (BIRD.replace('goldset = "birds"', 'goldset = "nowhere"'), "has no train.jsonl, dev.jsonl, holdout.jsonl"),
    (BIRD.replace('instructions = "Name the bird the question describes."\n', ''), "instructions: Field required"),
    ("[expert\nname = 1", "is not valid TOML"),
    ('name = "bird"', "declare each expert in an [expert] or [[expert]] table"),
])
def test_a_broken_declaration_is_refused_at_start_up_with_its_reason(tmp_path, body, why):
    goldset(tmp_path / "birds", ["Small, red breast, sings at dawn?"])
    path = declare(tmp_path, body)
    with pytest.raises(RegistryError) as caught:
        ExpertService(Settings(data_dir=tmp_path / "data", expert_files=[path]), local=None)
    assert why in str(caught.value), caught.value
    assert str(path) in str(caught.value)  # the message names the file to fix


def test_a_missing_expert_file_is_named(tmp_path):
    with pytest.raises(RegistryError, match="does not exist .SME_EXPERT_FILES names it."):
        ExpertRegistry.from_settings(Settings(expert_files=[tmp_path / "gone.toml"]))


def test_the_cli_refuses_to_start_with_a_broken_declaration(tmp_path, monkeypatch, capsys):
    from sme_mcp.server.cli import main

    monkeypatch.setenv("SME_EXPERT_FILES", json.dumps([str(declare(tmp_path, BIRD))]))  # its gold set is missing
    monkeypatch.setenv("SME_DATA_DIR", str(tmp_path / "data"))
    assert main(["ask", "--no-local", "What is 2 + 2?"]) == 2
    err = capsys.readouterr().err
    assert "error: expert 'bird'" in err and "has no train.jsonl" in err and "Traceback" not in err


def test_a_declared_expert_appears_everywhere_the_builtins_do(tmp_path):
    goldset(tmp_path / "birds", ["Small, red breast, sings at dawn?", "Black and white, cannot fly, lives in ice?"])
    settings = Settings(data_dir=tmp_path / "data", expert_files=[declare(tmp_path, BIRD)])
    service = ExpertService(settings, local=None)
    try:
        assert service.registry.names == ("math", "code", "general", "bird")
        info = {e.name: e for e in service.experts()}
        assert info["bird"].description == "Identifies birds from a description"
        assert info["bird"].source == str((tmp_path / "bird.toml").resolve())
        assert info["bird"].module.startswith("Predict(declared signature: question -> answer)")
        assert info["math"].source == "built-in" and info["router"].source is None
        assert service.validate("A robin?", "bird") == ("A robin?", "bird")
        with pytest.raises(InvalidQuestion, match="use one of: math, code, general, bird"):
            service.validate("A robin?", "birds")
        assert "bird" in service.chains and service.chain_specs("bird") == settings.general.chain
        assert service.registry.router_examples() == [("Small, red breast, sings at dawn?", "bird"),
                                                      ("Black and white, cannot fly, lives in ice?", "bird")]
        assert service.registry.goldset_dir("bird", settings.goldsets_dir) == (tmp_path / "birds").resolve()
    finally:
        service.close()


def test_the_router_lm_stage_may_choose_a_declared_expert_also_after_a_compiled_program_loads():
    from sme_mcp.experts.modules import ExpertRouter

    registry = ExpertRegistry.builtin()
    registry.register(ExpertSpec(name="bird", description="Identifies birds", module="m", build=lambda s: None,
                                 metric="exact", threshold=0.1))
    router = ExpertRouter(None)
    router.set_experts(registry)
    signature = router.route.predict.signature
    assert signature.output_fields["domain"].annotation.__args__ == ("math", "code", "general", "bird")
    assert signature.instructions.endswith("More experts:\n- bird: Identifies birds")
    router.set_experts(registry)  # again (after loading a compiled program): listed once
    assert router.route.predict.signature.instructions.count("- bird:") == 1


def test_the_domain_types_list_the_registry_experts():
    from pydantic import TypeAdapter, ValidationError

    names = ExpertNames(("math", "code", "general", "bird"))
    assert TypeAdapter(names.Expert | None).json_schema()["anyOf"][0]["enum"] == ["math", "code", "general", "bird"]
    assert TypeAdapter(names.Program).json_schema()["enum"][0] == "router"
    assert TypeAdapter(names.Expert).validate_python("bird") == "bird"
    with pytest.raises(ValidationError):
        TypeAdapter(names.Expert).validate_python("fish")


@pytest.mark.anyio
async def test_the_mcp_server_offers_a_declared_expert_in_its_schemas_and_list_experts(tmp_path):
    from mcp import Client

    from sme_mcp.server.app import build_server

    goldset(tmp_path / "birds", ["Small, red breast, sings at dawn?"])
    service = ExpertService(Settings(data_dir=tmp_path / "data", expert_files=[declare(tmp_path, BIRD)]), local=None)
    try:
        async with Client(build_server(service)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "bird" in tools["ask_expert"].input_schema["properties"]["domain"]["anyOf"][0]["enum"]
            assert "bird" in tools["ask_expert"].description
            assert "bird" in tools["optimize_domain"].input_schema["properties"]["domain"]["enum"]
            listed = await client.call_tool("list_experts", {})
            assert "bird" in [e["name"] for e in listed.structured_content["experts"]]
            refused = await client.call_tool("run_eval", {"domain": "fish"})
            assert refused.is_error and "domain" in refused.content[0].text
            rated = await client.call_tool("rate_answer", {"id": "u-0", "verdict": "wrong", "domain": "fish"})
            assert rated.is_error and "domain" in rated.content[0].text
    finally:
        service.close()


def test_the_shipped_example_declarations_load():
    registry = ExpertRegistry.from_settings(Settings(expert_files=[EXAMPLES / "science.toml",
                                                                   EXAMPLES / "timezone.toml"]))
    science, timezone = registry.get("science"), registry.get("timezone")
    assert science.metric == "multiple_choice" and science.module.startswith("ChainOfThought")
    assert timezone.metric == "time_of_day" and "tools convert_time from MCP server 'time'" in timezone.module
    assert (science.goldset_dir / "holdout.jsonl").is_file() and (timezone.goldset_dir / "train.jsonl").is_file()
    registry.close()  # nothing was started: the time server starts on the expert's first answer


@pytest.mark.parametrize(("metric", "item", "answer", "correct"), [
    ("multiple_choice", {"question": "Q?\n\nA) red\nB) blue\nC) green", "answer": "B"}, "B", True),
    ("multiple_choice", {"question": "Q?\n\nA) red\nB) blue\nC) green", "answer": "B"}, "(B) blue", True),
    ("multiple_choice", {"question": "Q?\n\nA) red\nB) blue\nC) green", "answer": "B"}, "The answer is B.", True),
    ("multiple_choice", {"question": "Q?\n\nA) red\nB) blue\nC) green", "answer": "B"}, "blue", True),
    ("multiple_choice", {"question": "Q?\n\nA) red\nB) blue\nC) green", "answer": "B"}, "A or B", False),
    ("multiple_choice", {"question": "Q?\n\nA) red\nB) blue\nC) green", "answer": "B"}, "C", False),
    ("time_of_day", {"question": "q", "answer": "19:05"}, "7:05 pm (next day)", True),
    ("time_of_day", {"question": "q", "answer": "04:15"}, "04:15", True),
    ("time_of_day", {"question": "q", "answer": "04:15"}, "4:15 PM", False),
    ("time_of_day", {"question": "q", "answer": "00:30"}, "12:30 AM", True),
    ("numeric", {"question": "q", "answer": "1250"}, "It costs 1,250 dollars", True),
    ("numeric", {"question": "q", "answer": "1250"}, "1249", False),
    ("token_f1", {"question": "q", "answers": ["the Pacific Ocean"]}, "Pacific", True),
])
def test_the_declared_metrics(metric, item, answer, correct):
    gold = GoldItem(id="i", domain="x", **item)
    assert score_item(metric, gold, SimpleNamespace(answer=answer)).correct is correct


def test_a_shipped_example_is_named_by_its_name(tmp_path):
    registry = ExpertRegistry.from_settings(Settings(expert_files=["example:science"]))
    assert registry.get("science").source == str(EXAMPLES / "science.toml")
    with pytest.raises(RegistryError, match="no shipped example expert 'poetry'; there are example:science, "
                                            "example:timezone"):
        ExpertRegistry.from_settings(Settings(expert_files=["example:poetry"]))
