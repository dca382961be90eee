"""Learning from use without the LM: the usage log, ratings, curation into train items, the router refit.

The SQLite log, the sandbox, the MiniLM embedder and the program store are all real; only the LM is
absent, which is why answers come from the exact math path and routed entries are written to the log
as `ask_logged` writes them. tests/integration/test_learning_from_use_real.py runs the same loop with
the real model, optimization included.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from mcp import Client

from sme_mcp.config.settings import LMSpec, RoleSettings, Settings
from sme_mcp.experts.service import ExpertService, InvalidQuestion
from sme_mcp.experts.usage_log import UsageError, UsageLog
from sme_mcp.optimize.feedback import rate_answer
from sme_mcp.optimize.goldsets import load_goldset
from sme_mcp.optimize.usage_items import curate
from sme_mcp.server.app import build_server

# The shipped router's neighbours decide this one wrongly, for math (measured: share 0.90).
MISROUTED = "What is the speed of light in km/s?"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings()
    chain = RoleSettings(chain=[LMSpec(), LMSpec(model="openai/gpt-4o-mini", api_key_env="SME_TEST_MISSING_KEY")])
    for role in ("router", "math", "code", "general"):  # no backend answers: no local server, no cloud key
        setattr(settings, role, chain)
    settings.data_dir = tmp_path / "data"
    settings.receipts_dir = tmp_path / "receipts"
    return settings


@pytest.fixture
def service(settings: Settings):
    svc = ExpertService(settings, local=None)
    yield svc
    svc.close()


def log_routed(service: ExpertService, question: str, domain: str, answer: str = "an answer") -> str:
    """Writes an entry as `ask_logged` does after the router chose `domain` and the expert answered."""
    return service.usage.record(question=question, domain=domain, routed_by="nearest_neighbours", confidence=0.9,
                                answer=answer, backend="local", client="mcp")


# -- the log --------------------------------------------------------------------------------------

def test_a_rating_replaces_the_earlier_one_and_the_log_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    first = UsageLog(path)
    entry_id = first.record(question="What is 2+2?", answer="5", domain="math", routed_by="fast_path")
    first.rate(entry_id, "correct")
    first.rate(entry_id, "wrong", correction="4")
    again = UsageLog(path)  # a new process opening the same file
    entry = again.get(entry_id)
    assert entry is not None and entry.rating is not None
    assert (entry.rating.verdict, entry.rating.correction) == ("wrong", "4")
    assert [e.id for e in again.recent()] == [entry_id]


@pytest.mark.parametrize(("entry_id", "message"), [
    ("u-123", "is not an answer id"),
    ("'; DROP TABLE entries; --", "is not an answer id"),
    ("u-0000000000000000", "no logged answer has the id"),
])
def test_malformed_and_unknown_ids_get_a_clear_error(tmp_path: Path, entry_id: str, message: str) -> None:
    usage = UsageLog(tmp_path / "usage.sqlite3")
    usage.record(question="q", answer="a")
    with pytest.raises(UsageError, match=message):
        usage.rate(entry_id, "wrong")
    assert usage.count() == 1  # nothing lost


def test_bad_verdicts_domains_and_corrections_are_refused(tmp_path: Path) -> None:
    usage = UsageLog(tmp_path / "usage.sqlite3")
    entry_id = usage.record(question="q", answer="a")
    with pytest.raises(UsageError, match="verdict must be"):
        usage.rate(entry_id, "meh")
    with pytest.raises(UsageError, match="unknown domain"):
        usage.rate(entry_id, "wrong", domain="cooking")
    with pytest.raises(UsageError, match="a correction goes with verdict 'wrong'"):
        usage.rate(entry_id, "correct", correction="b")
    assert usage.get(entry_id).rating is None


def test_the_log_keeps_at_most_max_entries_dropping_the_oldest(tmp_path: Path) -> None:
    usage = UsageLog(tmp_path / "usage.sqlite3", max_entries=3)
    ids = [usage.record(question=f"question {i}", answer=str(i)) for i in range(5)]
    assert usage.count() == 3
    assert {e.id for e in usage.recent(10)} == set(ids[2:])


def test_purge_deletes_every_entry_and_its_text(tmp_path: Path) -> None:
    usage = UsageLog(tmp_path / "usage.sqlite3")
    entry_id = usage.record(question="my secret question 7731", answer="a")
    usage.rate(entry_id, "correct")
    assert usage.purge() == 1
    assert usage.count() == 0 and usage.rated() == []
    assert b"7731" not in (tmp_path / "usage.sqlite3").read_bytes()


def test_with_the_log_off_nothing_is_written_and_answers_carry_no_id(settings: Settings) -> None:
    settings.usage.enabled = False
    service = ExpertService(settings, local=None)
    try:
        answer = service.ask_logged("What is 15% of 240?")
        assert answer.answer == "36" and answer.id is None
        with pytest.raises(UsageError, match="the usage log is off"):
            service.usage.rate("u-0000000000000000", "correct")
    finally:
        service.close()
    assert not (settings.data_dir / "usage.sqlite3").exists()
    assert not (settings.data_dir / "usage_goldsets").exists()


def test_users_questions_are_logged_evaluations_and_rejected_input_are_not(service: ExpertService) -> None:
    answer = service.ask_logged("What is 15% of 240?", client="cli")
    assert answer.id is not None
    entry = service.usage.get(answer.id)
    assert entry is not None
    assert (entry.question, entry.answer, entry.domain, entry.routed_by, entry.backend, entry.client) == (
        "What is 15% of 240?", "36", "math", "fast_path", "sympy", "cli")
    assert entry.cost is not None and entry.latency_ms is not None
    service.ask("What is 2**10?")  # what run_eval calls
    with pytest.raises(InvalidQuestion):
        service.ask_logged("   ")
    assert service.usage.count() == 1


def test_a_failed_question_is_logged_with_its_error(service: ExpertService) -> None:
    from sme_mcp.experts.lm import NoBackendError

    with pytest.raises(NoBackendError):
        service.ask_logged("Write a Python function that reverses a string.", domain="code")
    (entry,) = service.usage.recent()
    assert entry.error is not None and entry.error.startswith("NoBackendError") and entry.answer is None
    assert service.usage.stats()["none"].failed == 1


# -- curation -------------------------------------------------------------------------------------

def test_curation_turns_ratings_into_train_items_deduplicated_against_every_gold_split(
        service: ExpertService, settings: Settings) -> None:
    usage = service.usage
    confirmed = usage.record(question="What is 17% of 300?", answer="51", domain="math", routed_by="fast_path")
    corrected = usage.record(question="Who wrote the novel Middlemarch?", answer="Charles Dickens",
                             domain="general", routed_by="nearest_neighbours")
    no_fix = usage.record(question="Who painted the Night Watch?", answer="Vermeer", domain="general",
                          routed_by="nearest_neighbours")
    dev_question = load_goldset(settings.goldsets_dir / "math" / "dev.jsonl")[0].question
    in_gold = usage.record(question=f"  {dev_question.upper()} ", answer="x", domain="math", routed_by="router")
    usage.rate(confirmed, "correct")
    usage.rate(corrected, "wrong", correction="George Eliot")
    usage.rate(no_fix, "wrong")
    usage.rate(in_gold, "correct")
    out = settings.data_dir / "usage_goldsets"
    curation = curate(usage, settings.goldsets_dir, out)
    assert [(i.question, i.answer) for i in curation.items["math"]] == [("What is 17% of 300?", "51")]
    assert [(i.answers, i.source) for i in curation.items["general"]] == [(["George Eliot"], f"usage:{corrected}")]
    reasons = {s.entry_id: s.reason for s in curation.skipped}
    assert "without a correction" in reasons[no_fix]
    assert "already in the gold set math/dev.jsonl" in reasons[in_gold]
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jsonl"))
    assert written == ["general/train.jsonl", "math/train.jsonl"]  # only ever train files, under the data dir
    assert [item.id for item in load_goldset(out / "math" / "train.jsonl")] == [f"usage-{confirmed}"]


def test_the_newest_rating_of_a_question_wins(service: ExpertService, settings: Settings) -> None:
    usage = service.usage
    old = usage.record(question="Who wrote Middlemarch?", answer="Dickens", domain="general", routed_by="router")
    new = usage.record(question="who wrote middlemarch", answer="George Eliot", domain="general", routed_by="router")
    usage.rate(old, "correct")
    usage.rate(new, "correct")
    curation = curate(usage, settings.goldsets_dir)
    assert [i.answer for i in curation.items["general"]] == ["George Eliot"]
    assert any(s.entry_id == old and "newer rating" in s.reason for s in curation.skipped)


def test_code_items_need_tests_in_the_question_and_code_that_passes_them(
        service: ExpertService, settings: Settings) -> None:
    usage = service.usage
    question = "Write a Python function add(a, b) that returns a + b.\nassert add(2, 3) == 5"
    good = usage.record(question=question, answer="```python\ndef add(a, b):\n    return a - b\n```", domain="code",
                        routed_by="nearest_neighbours")
    untested = usage.record(question="Write a function that greets the user.", answer="def greet(): ...",
                            domain="code", routed_by="nearest_neighbours")
    usage.rate(good, "wrong", correction="def add(a, b):\n    return a + b")
    usage.rate(untested, "correct")
    wrong_fix = usage.record(question=question.replace("add", "plus"), answer="x", domain="code", routed_by="router")
    usage.rate(wrong_fix, "wrong", correction="def plus(a, b):\n    return a * b")
    curation = curate(usage, settings.goldsets_dir)
    (item,) = curation.items["code"]
    assert item.tests == ["assert add(2, 3) == 5"] and "a + b" in (item.answer or "")
    reasons = {s.entry_id: s.reason for s in curation.skipped}
    assert "needs tests" in reasons[untested]
    assert "fails the question's own tests" in reasons[wrong_fix]


def test_a_misroute_becomes_a_router_item_unless_the_caller_chose_the_domain(
        service: ExpertService, settings: Settings) -> None:
    usage = service.usage
    routed = log_routed(service, MISROUTED, "math")
    named = usage.record(question="How many bits are in a byte?", asked_domain="code", domain="code",
                         routed_by="explicit", answer="8")
    usage.rate(routed, "wrong", domain="general", correction="about 299,792 km/s")
    usage.rate(named, "correct", domain="general")
    curation = curate(usage, settings.goldsets_dir)
    assert [(i.question, i.label) for i in curation.items["router"]] == [(MISROUTED, "general")]
    assert [i.answer for i in curation.items["general"]] == ["about 299,792 km/s", "8"]
    assert any(s.entry_id == named and "caller named the domain" in s.reason for s in curation.skipped)


# -- the router refit -----------------------------------------------------------------------------

def test_a_reported_misroute_refits_the_router_at_once_gated_on_dev_with_a_receipt(
        service: ExpertService, settings: Settings) -> None:
    assert service.route(MISROUTED)[0] == "math"  # the shipped router gets it wrong, without the LM
    entry_id = log_routed(service, MISROUTED, "math")
    result = rate_answer(service, entry_id, "wrong", domain="general")
    refit = result.router_refit
    assert refit is not None and refit.promoted, result.next_step
    assert refit.dev_after.correct >= refit.dev_before.correct
    assert [(r.entry_id, r.before, r.after, r.decided_after) for r in refit.learned] == [
        (entry_id, "math", "general", True)]
    domain, _, routed_by = service.route(MISROUTED)
    assert (domain, routed_by) == ("general", "nearest_neighbours")
    receipt = json.loads((settings.receipts_dir / refit.receipt).read_text())
    assert receipt["kind"] == "refit" and receipt["provenance"]["learned_from_usage"] == [entry_id]
    assert receipt["report"]["dev_before"]["n"] == 100
    # A restarted server loads the refitted router from the data dir.
    restarted = ExpertService(settings, local=None)
    try:
        assert restarted.route(MISROUTED)[0] == "general"
        assert restarted.programs.active("router").optimizer == "refit_from_usage"
    finally:
        restarted.close()


def test_a_misroute_of_a_question_the_router_did_not_route_refits_nothing(service: ExpertService) -> None:
    entry_id = service.usage.record(question="What is 15% of 240?", domain="math", routed_by="fast_path", answer="36")
    result = rate_answer(service, entry_id, "wrong", domain="general")
    assert result.router_refit is None and "did not choose this expert" in result.next_step
    assert service.programs.active("router").optimizer != "refit_from_usage"


# -- over MCP -------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_ask_rate_and_read_the_usage_statistics_over_mcp(service: ExpertService) -> None:
    async with Client(build_server(service)) as client:
        asked = await client.call_tool("ask_expert", {"question": "What is 15% of 240?"})
        answer = asked.structured_content
        assert answer["answer"] == "36" and answer["id"].startswith("u-")
        rated = await client.call_tool("rate_answer", {"id": answer["id"], "verdict": "correct"})
        assert not rated.is_error and rated.structured_content["entry"]["rating"]["verdict"] == "correct"
        bad = await client.call_tool("rate_answer", {"id": "u-0000000000000000", "verdict": "wrong"})
        assert bad.is_error and "no logged answer has the id" in bad.content[0].text
        stats = json.loads((await client.read_resource("usage://stats")).contents[0].text)
    assert stats["entries"] == 1
    assert stats["domains"]["math"] | {"median_latency_ms": None} == {
        "questions": 1, "answered": 1, "failed": 0, "rated": 1, "rated_correct": 1, "rated_wrong": 0,
        "share_rated_wrong": 0.0, "misroutes": 0, "median_latency_ms": None}


def test_the_log_is_plain_sqlite_the_user_can_inspect(service: ExpertService, settings: Settings) -> None:
    entry_id = service.ask_logged("What is 15% of 240?").id
    with sqlite3.connect(settings.data_dir / "usage.sqlite3") as conn:
        assert conn.execute("SELECT question FROM entries WHERE id = ?", (entry_id,)).fetchone() == (
            "What is 15% of 240?",)
