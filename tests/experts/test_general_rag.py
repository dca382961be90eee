"""Wiring of `RetrievalGeneralExpert`: retrieval feeds the prompt, sources follow the hits (DummyLM only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dspy
import pytest
from dspy.utils import DummyLM

from sme_mcp.experts.general_rag import RetrievalGeneralExpert
from sme_mcp.experts.modules import GeneralExpert


@dataclass
class FoundPassage:
    text: str
    source: str
    title: str


ETNA = FoundPassage("Mount Etna is an active stratovolcano on the east coast of Sicily.", "/docs/etna.md", "Etna")
VESUVIUS = FoundPassage("Vesuvius destroyed Pompeii in AD 79.", "/docs/vesuvius.md", "Vesuvius")


def last_prompt(lm: DummyLM) -> str:
    return "\n".join(str(m["content"]) for m in lm.history[-1]["messages"])


def test_passages_reach_the_prompt_and_sources_follow_the_hits() -> None:
    calls: list[tuple[str, int]] = []

    def search(question: str, k: int) -> list[object]:
        calls.append((question, k))
        # A dict hit, an object hit, and a second chunk of the first source (one source entry).
        return [ETNA, {"text": VESUVIUS.text, "source": VESUVIUS.source, "title": VESUVIUS.title},
                FoundPassage("Etna erupts often.", ETNA.source, ETNA.title)]

    lm = DummyLM([{"reasoning": "The context says Sicily.", "answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(search, k=3)(question="Where is Mount Etna?")

    assert calls == [("Where is Mount Etna?", 3)]
    assert pred.answer == "Sicily"
    assert pred.reasoning == "The context says Sicily."
    assert pred.sources == [{"source": ETNA.source, "title": "Etna"}, {"source": VESUVIUS.source, "title": "Vesuvius"}]
    prompt = last_prompt(lm)
    assert "east coast of Sicily" in prompt and "destroyed Pompeii" in prompt and "Etna erupts often" in prompt


def test_keeps_only_k_passages_even_if_search_returns_more() -> None:
    lm = DummyLM([{"reasoning": "r", "answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA, VESUVIUS], k=1)(question="Where is Etna?")
    assert pred.sources == [{"source": ETNA.source, "title": "Etna"}]
    assert "destroyed Pompeii" not in last_prompt(lm)


def test_passages_below_the_similarity_floor_are_not_shown() -> None:
    near = {"text": ETNA.text, "source": ETNA.source, "title": ETNA.title, "similarity": 0.62}
    far = {"text": VESUVIUS.text, "source": VESUVIUS.source, "title": VESUVIUS.title, "similarity": 0.21}
    unscored = FoundPassage("Etna erupts often.", "/docs/etna-notes.md", "Notes")  # e.g. full-text only: kept
    lm = DummyLM([{"reasoning": "r", "answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [near, far, unscored], k=3, min_similarity=0.35)(
            question="Where is Etna?")
    assert pred.sources == [{"source": ETNA.source, "title": "Etna"},
                            {"source": "/docs/etna-notes.md", "title": "Notes"}]
    prompt = last_prompt(lm)
    assert "east coast of Sicily" in prompt and "Etna erupts often" in prompt and "destroyed Pompeii" not in prompt


def test_k_zero_is_closed_book_and_never_searches() -> None:
    def search(question: str, k: int) -> list[object]:
        raise AssertionError("searched with k=0")

    lm = DummyLM([{"reasoning": "r", "answer": "Paris"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(search, k=0)(question="What is the capital of France?")
    assert pred.answer == "Paris" and pred.sources == []


def test_no_hits_answers_without_context() -> None:
    lm = DummyLM([{"reasoning": "From general knowledge.", "answer": "Paris"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [])(question="What is the capital of France?")
    assert pred.answer == "Paris"
    assert pred.sources == []
    assert "Sicily" not in last_prompt(lm)


def test_failing_search_still_answers() -> None:
    def broken(question: str, k: int) -> list[object]:
        raise RuntimeError("index is gone")

    lm = DummyLM([{"reasoning": "r", "answer": "4"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(broken)(question="How many legs does a dog have?")
    assert pred.answer == "4"
    assert pred.sources == []


def test_copies_share_the_search_and_have_one_optimizable_predictor() -> None:
    class Index:  # stands in for an object holding open handles, which cannot be deep-copied
        def __init__(self) -> None:
            import threading

            self.lock = threading.Lock()

        def search(self, question: str, k: int) -> list[object]:
            return [ETNA]

    module = RetrievalGeneralExpert(Index().search, k=2)
    copy = module.deepcopy()
    assert copy.search is module.search
    assert copy.generate_answer is not module.generate_answer
    assert [name for name, _ in module.named_predictors()] == ["generate_answer.predict", "answer_again.predict",
                                                              "draft", "judge"]
    assert copy.k == 2


def test_a_plain_general_expert_program_does_not_load_silently(tmp_path: Path) -> None:
    saved = tmp_path / "general.json"
    GeneralExpert().save(str(saved))
    with pytest.raises(KeyError, match="generate_answer"):
        RetrievalGeneralExpert(lambda q, k: []).load(str(saved))


def test_an_answer_that_repeats_the_question_is_asked_for_once_more() -> None:
    question = "Where is Mount Etna?"
    lm = DummyLM([{"reasoning": "It is Etna.", "answer": "Mount Etna"},
                  {"reasoning": "On Sicily.", "answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA], k=1)(question=question)
    assert len(lm.history) == 2 and pred.answer == "Sicily" and pred.reasoning == "On Sicily."
    assert "Mount Etna" in last_prompt(lm) and "rejected_answer" in last_prompt(lm)
    assert pred.verification["outcome"] == "grounded"

    # A second echo keeps the first answer, marked; with the retry off, one call and the echo is marked.
    lm = DummyLM([{"reasoning": "r", "answer": "Mount Etna"}, {"reasoning": "r", "answer": "Etna"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA], k=1)(question=question)
    assert len(lm.history) == 2 and pred.answer == "Mount Etna" and pred.verification["outcome"] == "not_grounded"
    lm = DummyLM([{"reasoning": "r", "answer": "Mount Etna"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA], k=1, retry_echo=False)(question=question)
    assert len(lm.history) == 1 and "only repeats words of the question" in pred.verification["checked"]


def test_without_reasoning_the_model_is_asked_for_the_answer_alone() -> None:
    lm = DummyLM([{"answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA], k=1, reasoning=False)(question="Where is Mount Etna?")
    assert pred.answer == "Sicily" and pred.reasoning == ""
    assert "reasoning" not in last_prompt(lm)  # the output fields the model is told to fill: the answer only
    assert pred.verification["outcome"] == "grounded"
    # The echo retry works the same way without reasoning.
    lm = DummyLM([{"answer": "Mount Etna"}, {"answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA], k=1, reasoning=False)(question="Where is Mount Etna?")
    assert len(lm.history) == 2 and pred.answer == "Sicily" and pred.reasoning == ""


NAIROBI = FoundPassage("Kenya's capital and largest city is Nairobi. Kenya lies on the equator.", "/docs/kenya.md",
                       "Kenya")


def test_a_draft_the_passages_support_is_the_answer_in_one_short_call() -> None:
    lm = DummyLM([{"answer": "Nairobi"}])
    with dspy.context(lm=lm, trace=[]):
        pred = RetrievalGeneralExpert(lambda q, k: [NAIROBI, ETNA], k=2, draft_first=True)(
            question="What is the capital of Kenya?")
        trace = list(dspy.settings.trace)
    assert len(lm.history) == 1 and pred.answer == "Nairobi" and pred.drafted is True
    assert "largest city is Nairobi" not in last_prompt(lm)  # the model answered without reading the passages
    assert pred.verification["outcome"] == "grounded" and "before reading the passages" in pred.verification["checked"]
    assert pred.sources == [{"source": NAIROBI.source, "title": "Kenya"}]  # the passage that supports it only
    assert len(trace) == 1  # the returned draft is what an optimizer may learn from


def test_a_draft_the_passages_do_not_support_is_dropped_and_the_passages_are_read() -> None:
    lm = DummyLM([{"answer": "Mombasa"}, {"reasoning": "The passage says Nairobi.", "answer": "Nairobi"}])
    with dspy.context(lm=lm, trace=[]):
        pred = RetrievalGeneralExpert(lambda q, k: [NAIROBI], k=1, draft_first=True)(
            question="What is the capital of Kenya?")
        trace = list(dspy.settings.trace)
    assert len(lm.history) == 2 and pred.answer == "Nairobi" and pred.drafted is False
    assert "largest city is Nairobi" in last_prompt(lm) and pred.verification["outcome"] == "grounded"
    assert "before reading" not in pred.verification["checked"]
    assert len(trace) == 1 and "Mombasa" not in str(trace)  # the discarded draft teaches nothing


def test_no_draft_without_passages_or_with_the_setting_off() -> None:
    for search, draft_first in (((lambda q, k: []), True), ((lambda q, k: [NAIROBI]), False)):
        lm = DummyLM([{"reasoning": "r", "answer": "Nairobi"}])
        with dspy.context(lm=lm):
            expert = RetrievalGeneralExpert(search, k=1, draft_first=draft_first)
            pred = expert(question="What is the capital of Kenya?")
        assert len(lm.history) == 1 and pred.drafted is False and "reasoning" in last_prompt(lm)


VICTORIA = FoundPassage("Victoria is a state in south-eastern Australia. Its capital is Melbourne, the second most "
                        "populous city in Australia.", "/docs/victoria.md", "Victoria (Australia)")


def test_a_grounded_answer_the_model_does_not_confirm_is_marked_partial() -> None:
    question = "What is the capital of Australia?"
    lm = DummyLM([{"reasoning": "The passage names Melbourne.", "answer": "Melbourne"}, {"supported": False}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [VICTORIA], k=1, judge_grounding=True)(question=question)
    assert len(lm.history) == 2 and pred.answer == "Melbourne"  # the answer stands; its label does not
    judged = last_prompt(lm)
    assert "Its capital is Melbourne" in judged and question in judged and "proposed_answer" in judged
    assert pred.verification["outcome"] == "partial" and "did not confirm" in pred.verification["checked"]
    assert "evidence" not in pred.verification  # the Verification's own fields only

    # Confirmed, it stays grounded and says so; with the setting off nothing is asked and the lexical verdict stands.
    lm = DummyLM([{"reasoning": "r", "answer": "Melbourne"}, {"supported": True}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [VICTORIA], k=1, judge_grounding=True)(question=question)
    assert pred.verification["outcome"] == "grounded" and "confirmed" in pred.verification["checked"]
    lm = DummyLM([{"reasoning": "r", "answer": "Melbourne"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [VICTORIA], k=1)(question=question)
    assert len(lm.history) == 1 and pred.verification["outcome"] == "grounded"


def test_only_a_grounded_answer_is_judged() -> None:
    lm = DummyLM([{"reasoning": "r", "answer": "Canberra"}])  # not in the passage: nothing to confirm
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [VICTORIA], k=1, judge_grounding=True)(
            question="What is the capital of Australia?")
    assert len(lm.history) == 1 and pred.verification["outcome"] == "not_grounded"


def test_a_draft_is_returned_only_when_its_sentence_is_confirmed() -> None:
    lm = DummyLM([{"answer": "Melbourne"}, {"supported": False},
                  {"reasoning": "r", "answer": "Melbourne"}, {"supported": False}])
    with dspy.context(lm=lm, trace=[]):
        pred = RetrievalGeneralExpert(lambda q, k: [VICTORIA], k=1, draft_first=True, judge_grounding=True)(
            question="What is the capital of Australia?")
        trace = list(dspy.settings.trace)
    assert len(lm.history) == 4 and pred.drafted is False and pred.verification["outcome"] == "partial"
    # The dropped draft and its judgment teach nothing; the answer read from the passages and its judgment remain.
    assert [p.signature.__name__ for p, _, _ in trace][1:] == ["JudgeSupport"] and len(trace) == 2
    assert all(p.signature.__name__ != "AnswerClosedBook" for p, _, _ in trace)


def test_brief_reasoning_asks_for_one_quoting_sentence_and_keeps_the_reasoning_field() -> None:
    from sme_mcp.experts.general_rag import BRIEF_REASONING

    lm = DummyLM([{"reasoning": "'on the east coast of Sicily'", "answer": "Sicily"},
                  {"reasoning": "r", "answer": "Sicily"}])
    with dspy.context(lm=lm):
        pred = RetrievalGeneralExpert(lambda q, k: [ETNA], k=1, brief_reasoning=True)(question="Where is Mount Etna?")
        assert pred.answer == "Sicily" and pred.reasoning == "'on the east coast of Sicily'"
        assert BRIEF_REASONING in last_prompt(lm)
        RetrievalGeneralExpert(lambda q, k: [ETNA], k=1)(question="Where is Mount Etna?")
        assert BRIEF_REASONING not in last_prompt(lm)  # step by step unless asked
    # Without reasoning there is no reasoning field to make brief.
    lm = DummyLM([{"answer": "Sicily"}])
    with dspy.context(lm=lm):
        RetrievalGeneralExpert(lambda q, k: [ETNA], k=1, reasoning=False, brief_reasoning=True)(
            question="Where is Mount Etna?")
    assert "reasoning" not in last_prompt(lm)
