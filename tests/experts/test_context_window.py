"""Passages cut to the sentences about the question (experts/context_window.py) and the cut's place in retrieval."""

from __future__ import annotations

from pathlib import Path

import dspy
from dspy.utils import DummyLM

from sme_mcp.config.settings import Settings
from sme_mcp.experts.context_window import sentence_window
from sme_mcp.experts.general_rag import RetrievalGeneralExpert, retrieve_context
from sme_mcp.experts.service import ExpertService

BOWL = ("Super Bowl 50: The game was played at Levi's Stadium. The stadium is in Santa Clara. "
        "Tickets sold out early. The Denver Broncos defeated the Carolina Panthers 24-10. "
        "Von Miller was named the game's MVP. Lady Gaga sang the anthem. Coldplay played at halftime.")
QUESTION = "Who was named MVP of Super Bowl 50?"


def test_the_best_sentence_and_its_neighbours_are_kept_in_order_with_the_title() -> None:
    [cut] = sentence_window(QUESTION, [BOWL], keep=1, window=1)
    assert cut == ("Super Bowl 50: … The Denver Broncos defeated the Carolina Panthers 24-10. Von Miller was named "
                   "the game's MVP. Lady Gaga sang the anthem. …")
    assert len(cut) < len(BOWL)


def test_sentences_far_apart_are_joined_with_a_gap_and_order_is_the_passages() -> None:
    [cut] = sentence_window("Where was Super Bowl 50 played, and who won the MVP?", [BOWL], keep=2, window=0)
    assert cut == "Super Bowl 50: The game was played at Levi's Stadium. … Von Miller was named the game's MVP. …"


def test_keep_zero_and_short_passages_are_left_whole() -> None:
    short = "Moon: Apollo 11 landed in 1969. It carried three men."
    assert sentence_window(QUESTION, [BOWL, short], keep=0) == [BOWL, short]
    assert sentence_window("When did Apollo 11 land?", [short], keep=1, window=1) == [short]


def test_the_expert_is_shown_the_cut_passages_and_grounds_its_answer_in_them(tmp_path: Path) -> None:
    hits = [{"title": "Super Bowl 50", "text": BOWL.partition(": ")[2], "source": "bowl.md", "similarity": 0.8}]
    whole, sources = retrieve_context(lambda q, k: hits, QUESTION, 3)
    cut, cut_sources = retrieve_context(lambda q, k: hits, QUESTION, 3, keep_sentences=1, sentence_window=0)
    assert whole == [BOWL] and cut == ["Super Bowl 50: … Von Miller was named the game's MVP. …"]
    assert cut_sources == sources == [{"source": "bowl.md", "title": "Super Bowl 50"}]

    svc = ExpertService(Settings(data_dir=tmp_path, retrieval_keep_sentences=1, retrieval_sentence_window=0),
                        local=None)
    expert = svc.build_module("general")
    svc.close()
    assert isinstance(expert, RetrievalGeneralExpert) and (expert.keep_sentences, expert.sentence_window) == (1, 0)
    expert.search = lambda q, k: hits
    lm = DummyLM([{"reasoning": "The passage says so.", "answer": "Von Miller"}])
    with dspy.context(lm=lm):
        pred = expert(question=QUESTION)
    prompt = "\n".join(str(m["content"]) for m in lm.history[0]["messages"])
    assert "Von Miller was named" in prompt and "Coldplay" not in prompt and "Levi's Stadium" not in prompt
    assert pred.verification["outcome"] == "grounded"
