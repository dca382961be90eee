"""The order retrieved passages are shown in (experts/rerank.py) and its place in `retrieve_context`."""

from __future__ import annotations

from sme_mcp.config.settings import Settings
from sme_mcp.experts.general_rag import retrieve_context
from sme_mcp.experts.rerank import fused_order

QUESTION = "In what year did Nikola Tesla die?"
HITS = [
    {"title": "Nikola Tesla", "text": "Tesla was a Serbian-American inventor and engineer.", "similarity": 0.7},
    {"title": "Nikola Tesla", "text": "Tesla worked for Edison in New York.", "similarity": 0.6},
    {"title": "Tesla coil", "text": "The Tesla coil produces high voltages.", "similarity": 0.55},
    {"title": "Nikola Tesla", "text": "He died in New York on 7 January 1943.", "similarity": 0.5},
    {"title": "Cats", "text": "Cats purr when they die down.", "similarity": 0.1},
]


def search(question: str, k: int) -> list[dict]:
    return [{**h, "source": f"/docs/{i}.md"} for i, h in enumerate(HITS)][:k]


def test_the_sentence_that_answers_brings_its_passage_among_the_k_shown():
    plain, _ = retrieve_context(search, QUESTION, 3, min_similarity=0.35)
    assert not any("1943" in p for p in plain)  # fourth in the search's order
    reranked, sources = retrieve_context(search, QUESTION, 3, min_similarity=0.35, pool=10)
    assert len(reranked) == 3 and any("1943" in p for p in reranked)
    assert {"source": "/docs/3.md", "title": "Nikola Tesla"} in sources
    assert not any("Cats" in p for p in reranked)  # the similarity floor still applies before the reordering


def test_a_pool_no_larger_than_k_keeps_the_search_order():
    assert retrieve_context(search, QUESTION, 3, 0.35, pool=3) == retrieve_context(search, QUESTION, 3, 0.35)


def test_fusion_keeps_the_search_order_where_the_two_rankings_agree_or_tie():
    passages = [f"{h['title']}: {h['text']}" for h in HITS[:3]]
    assert fused_order("Who was a Serbian-American inventor?", passages) == [0, 1, 2]
    assert fused_order("", passages) == [0, 1, 2]  # nothing asked: every passage supports it equally


def test_the_shipped_settings_rerank_a_pool_larger_than_k():
    settings = Settings()
    assert settings.retrieval_pool > settings.retrieval_k
