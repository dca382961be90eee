"""run_eval through the MCP tool on arithmetic items (exact fast path: real checks, no LM needed)."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from sme_mcp.config.settings import Settings
from sme_mcp.experts.registry import ExpertRegistry
from sme_mcp.experts.service import ExpertService
from sme_mcp.server.app import build_server

ITEMS = [("What is 2 + 2?", "4"), ("What is 1/2 + 1/3?", "5/6"), ("12 * 12", "144"), ("7 * 6", "41")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("SME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SME_RECEIPTS_DIR", str(tmp_path / "receipts"))
    monkeypatch.setenv("SME_CLIENT_FILES__GOLDSET_ROOTS", json.dumps([str(tmp_path)]))  # where the tests' files are
    svc = ExpertService(Settings(), local=None)
    yield svc
    svc.close()


@pytest.fixture
def goldset(tmp_path):
    path = tmp_path / "arith.jsonl"
    lines = [
        json.dumps({"id": f"a{i}", "domain": "math", "question": q, "answer": a, "source": "test"})
        for i, (q, a) in enumerate(ITEMS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.anyio
async def test_run_eval_reports_interval_progress_and_writes_a_readable_receipt(service, goldset, tmp_path):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(build_server(service)) as client:
        out = await client.call_tool(
            "run_eval", {"domain": "math", "goldset_path": str(goldset)}, progress_callback=on_progress
        )
        assert not out.is_error, out.content
        report = out.structured_content
        listing = await client.read_resource("receipt://index")
        receipt = await client.read_resource(f"receipt://{report['receipt']}")
        with pytest.raises(MCPError, match="no receipt named nope.json"):
            await client.read_resource("receipt://nope.json")

    assert report["n"] == 4 and report["correct"] == 3 and report["score"] == 0.75
    assert 0.0 < report["ci_low"] < 0.75 < report["ci_high"] < 1.0
    assert report["split"] == "custom" and report["threshold"] is None and report["passed"] is None
    assert [f["id"] for f in report["failures"]] == ["a3"]
    assert report["failures"][0]["prediction"] == "42"
    assert sorted(p for p, _, _ in seen) == [1, 2, 3, 4] and all(t == 4 for _, t, _ in seen)

    path = tmp_path / "receipts" / report["receipt"]
    body = json.loads(path.read_text())
    assert body["kind"] == "eval" and body["report"]["score"] == 0.75
    assert [i["id"] for i in body["items"]] == ["a0", "a1", "a2", "a3"]
    assert sum(i["correct"] for i in body["items"]) == 3
    assert body["expert_settings"] == {"react_max_iters": service.settings.react_max_iters,
                                       "math_word_problems": service.settings.math_word_problems,
                                       "math_implausible_retry": service.settings.math_implausible_retry}
    assert body["packages"]["dspy"] and body["git_commit"]
    assert report["receipt"] in json.loads(listing.contents[0].text)
    assert json.loads(receipt.contents[0].text)["report"]["correct"] == 3
    # Each item keeps the verification its user saw, and the report says how right each outcome was.
    assert all(i["verification"]["method"] == "exact" for i in body["items"])
    outcomes = {o: (t["n"], t["correct"]) for o, t in report["verification"].items()}
    assert sum(n for n, _ in outcomes.values()) == 4 and sum(c for _, c in outcomes.values()) == 3


@pytest.mark.anyio
async def test_run_eval_rejects_a_malformed_goldset_with_file_and_line(service, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "domain": "math", "question": "1+1", "answer": "2"}\nnot json\n')
    async with Client(build_server(service)) as client:
        out = await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(bad)})
        gone = await client.call_tool("run_eval", {"domain": "math", "goldset_path": str(tmp_path / "none.jsonl")})
    assert out.is_error and "bad.jsonl:2" in out.content[0].text
    assert gone.is_error and "no gold set" in gone.content[0].text
    assert not (tmp_path / "receipts").exists()


def test_general_receipts_say_whether_retrieval_was_on_and_over_what(service):
    from sme_mcp.optimize.evaluate import _expert_settings

    found = _expert_settings(service, "general")
    assert found == {"retrieval_k": 3, "retrieval_min_similarity": 0.35, "retrieval_pool": 10,
                     "retrieval_keep_sentences": 0, "retrieval_sentence_window": 1, "general_retry_echo": True,
                     "general_reasoning": True, "general_brief_reasoning": False, "general_draft_first": False,
                     "general_judge_grounding": False, "collection": None}  # nothing ingested
    assert _expert_settings(service, "code") == {"code_repair_attempts": 0, "code_reasoning": True,
                                                 "code_alternatives": service.settings.code_alternatives,
                                                 "code_calls_without_tests": service.settings.code_calls_without_tests,
                                                 "code_reasoning_without_tests":
                                                     service.settings.code_reasoning_without_tests}
    assert _expert_settings(service, "math") == {"react_max_iters": 5,
                                                 "math_word_problems": service.settings.math_word_problems,
                                                 "math_implausible_retry": service.settings.math_implausible_retry}


def test_a_cancelled_eval_keeps_a_partial_receipt_only_when_asked(service, goldset, tmp_path):
    import threading

    from sme_mcp.optimize.evaluate import EvalCancelled, run_eval

    for keep in (False, True):
        cancel = threading.Event()

        def stop_after_two(done: int, total: int, correct: int, cancel: threading.Event = cancel) -> None:
            if done == 2:
                cancel.set()

        with pytest.raises(EvalCancelled, match="cancelled after 2 of 4 items") as caught:
            run_eval(service, "math", path=goldset, progress=stop_after_two, cancel=cancel, keep_partial=keep)
        receipts = sorted((tmp_path / "receipts").glob("*.json")) if (tmp_path / "receipts").exists() else []
        if not keep:
            assert caught.value.receipt is None and receipts == []
            continue
        assert [p.name for p in receipts] == [caught.value.receipt]
        body = json.loads(receipts[0].read_text())
        assert body["report"]["complete"] is False and body["report"]["planned"] == 4
        assert body["report"]["n"] == 2 and [i["id"] for i in body["items"]] == ["a0", "a1"]


def test_a_partial_receipt_is_resumed_only_by_the_same_clean_run(service, goldset, tmp_path, monkeypatch):
    import threading

    from sme_mcp.optimize import receipts
    from sme_mcp.optimize.evaluate import EvalCancelled, ResumeMismatch, run_eval

    commit = {"value": "abc1234"}
    monkeypatch.setattr(receipts, "git_commit", lambda repo=None: commit["value"])
    cancel = threading.Event()
    with pytest.raises(EvalCancelled) as caught:
        run_eval(service, "math", path=goldset, cancel=cancel, keep_partial=True,
                 progress=lambda done, total, correct: cancel.set() if done == 2 else None)
    partial = tmp_path / "receipts" / caught.value.receipt
    before = json.loads(partial.read_text())

    with pytest.raises(ResumeMismatch, match="limit: receipt None, this run 3"):
        run_eval(service, "math", path=goldset, limit=3, resume=partial)
    commit["value"] = "abc1234-dirty"
    with pytest.raises(ResumeMismatch, match="uncommitted changes"):
        run_eval(service, "math", path=goldset, resume=partial)
    commit["value"] = "def5678"
    with pytest.raises(ResumeMismatch, match="git commit: receipt 'abc1234', this run 'def5678'"):
        run_eval(service, "math", path=goldset, resume=partial)

    commit["value"] = "abc1234"
    seen: list[int] = []
    report, results = run_eval(service, "math", path=goldset, resume=partial,
                               progress=lambda done, total, correct: seen.append(done))
    assert seen == [3, 4]  # only the two items the partial run had not scored
    assert report.complete and report.n == 4 and report.resumed_from == [partial.name]
    body = json.loads((tmp_path / "receipts" / report.receipt).read_text())
    assert [i["id"] for i in body["items"]] == ["a0", "a1", "a2", "a3"]
    assert body["items"][:2] == before["items"]  # kept as measured, not scored again
    assert body["report"]["resumed_from"] == [partial.name] and body["git_commit"] == "abc1234"
    with pytest.raises(ResumeMismatch, match="is complete"):
        run_eval(service, "math", path=goldset, resume=tmp_path / "receipts" / report.receipt)


def test_the_receipt_names_the_program_the_run_used_not_one_activated_during_it(service, goldset):
    from sme_mcp.optimize.evaluate import run_eval

    if service.programs.active("math") is not None:  # seeded from compiled/
        service.programs.rollback("math", "base")

    def promote_midway(done: int, total: int, correct: int) -> None:
        if done == 1:  # e.g. an optimize job on the same server promotes a candidate
            store = service.programs
            store.promote(store.save("math", service.build_module("math"), holdout_score=1.0))

    report, _ = run_eval(service, "math", path=goldset, progress=promote_midway, write=False)
    assert service.programs.active("math") is not None
    assert report.program_version is None  # the run started on (and kept) the base program
    second, _ = run_eval(service, "math", path=goldset, write=False)
    assert second.program_version is None  # the loaded module stays until the service reloads it
    service.reload("math")
    third, _ = run_eval(service, "math", path=goldset, write=False)
    assert third.program_version == service.programs.active("math").version


def test_an_errored_general_item_counts_as_f1_zero_in_mean_f1(tmp_path):
    from types import SimpleNamespace

    from sme_mcp.optimize.evaluate import run_eval

    path = tmp_path / "general.jsonl"
    rows = [("g0", "Who wrote Hamlet?", "William Shakespeare"), ("g1", "Capital of France?", "Paris")]
    path.write_text("".join(
        json.dumps({"id": i, "domain": "general", "question": q, "answer": a, "answers": [a]}) + "\n"
        for i, q, a in rows
    ))

    def ask(question: str, domain: str, trace: object = None) -> SimpleNamespace:
        if question.startswith("Capital"):
            raise RuntimeError("the LM call failed")
        return SimpleNamespace(answer="William Shakespeare", code="", cost=None)

    fake = SimpleNamespace(  # only what run_eval touches when it writes no receipt
        settings=SimpleNamespace(eval_thresholds={}), program_version=lambda goldset: None, ask=ask,
        describe_lm=lambda goldset: {}, registry=ExpertRegistry.builtin(),
    )
    report, items = run_eval(fake, "general", path=path, write=False)
    by_id = {r.id: r for r in items}
    assert by_id["g0"].f1 == 1.0 and by_id["g0"].correct
    assert by_id["g1"].f1 == 0.0 and not by_id["g1"].correct and "RuntimeError" in by_id["g1"].detail
    assert report.n == 2 and report.correct == 1
    assert report.mean_f1 == 0.5  # was 1.0: the errored item was left out of the mean
    assert report.verification is None  # neither answer said what it checked
