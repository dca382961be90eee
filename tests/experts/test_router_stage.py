"""The router's nearest-neighbour stage on the real MiniLM embedder (no LM)."""

from __future__ import annotations

import copy
import json

import dspy
import pytest

from sme_mcp.config.settings import REPO_DIR
from sme_mcp.experts.modules import ExpertRouter
from sme_mcp.experts.router_stage import NearestNeighbourStage, load_router_examples
from sme_mcp.optimize.goldsets import load_goldset
from sme_mcp.tools.embedder import LocalEmbedder


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    cache = tmp_path_factory.mktemp("router-cache")
    return NearestNeighbourStage(LocalEmbedder().embed, cache_dir=cache).fit(
        load_router_examples(REPO_DIR / "goldsets")
    )


def test_everyday_questions_route_without_the_lm(stage):
    for question, label in [
        ("Write a Python function that returns the n-th Fibonacci number.", "code"),
        ("Can you write a python function to check if a number is prime?", "code"),
        ("What is the capital of Australia?", "general"),
        ("Who wrote the novel Moby Dick?", "general"),
        ("Sam has 24 cookies and gives a third away. How many are left?", "math"),
    ]:
        vote = stage.vote(question)
        assert vote is not None and vote.label == label, (question, vote)
        assert 0.0 <= vote.share <= 1.0


def test_dev_split_votes_are_mostly_right(stage):
    """The dev split chose the thresholds; this guards against a broken stage, not a score."""
    items = load_goldset(REPO_DIR / "goldsets" / "router" / "dev.jsonl")
    votes = [stage.vote(item.question) for item in items]
    right = sum(v.label == item.label for v, item in zip(votes, items, strict=True))
    decided = [(v, item) for v, item in zip(votes, items, strict=True) if v.decided]
    assert right >= 0.9 * len(items)
    assert decided and sum(v.label == item.label for v, item in decided) >= 0.95 * len(decided)


def test_state_survives_save_and_load_and_deepcopy(stage, tmp_path):
    router = ExpertRouter(stage)
    path = tmp_path / "router.json"
    router.save(str(path))
    saved = json.loads(path.read_text())
    assert len(saved["nearest"]["examples"]) == len(stage.examples)
    fresh = ExpertRouter(NearestNeighbourStage(stage.embed))
    fresh.load(str(path))
    assert fresh.nearest.examples == stage.examples and fresh.nearest.min_share == stage.min_share
    clone = copy.deepcopy(router)
    assert clone.nearest.embed is stage.embed and clone.nearest.examples == stage.examples
    assert [name for name, _ in router.named_predictors()] == ["route.predict"]


def test_an_undecided_vote_falls_through_to_the_lm_stage(stage):
    strict = copy.deepcopy(stage)
    strict.min_share = 1.01  # nothing decides
    lm = dspy.utils.DummyLM([{"reasoning": "r", "domain": "general", "confidence": 0.4}],
                            adapter=dspy.JSONAdapter())
    with dspy.context(lm=lm):
        pred = ExpertRouter(strict)(question="What is the capital of Australia?")
    assert pred.stage == "lm" and pred.domain == "general"
    with dspy.context(lm=lm):
        decided = ExpertRouter(stage)(question="What is the capital of Australia?")
    assert decided.stage == "nearest_neighbours" and decided.domain == "general"
