"""The lexical grounding check of general answers (experts/grounding.py) and its place in the answer."""

from __future__ import annotations

from pathlib import Path

import dspy
from dspy.utils import DummyLM

from sme_mcp.config.settings import Settings
from sme_mcp.experts.answer import answer_from_prediction
from sme_mcp.experts.general_rag import RetrievalGeneralExpert
from sme_mcp.experts.grounding import check_grounding
from sme_mcp.experts.lm import Served

SUPER_BOWL = ("Super Bowl 50: The American Football Conference (AFC) champion Denver Broncos defeated the National "
              "Football Conference (NFC) champion Carolina Panthers 24–10 to earn their third Super Bowl title.")
MVP = "NFL MVP: Cam Newton of the Carolina Panthers was named the league's Most Valuable Player for 2015."


def test_an_answer_named_in_a_passage_is_grounded_and_the_check_says_it_is_lexical():
    out = check_grounding("the Denver Broncos", [MVP, SUPER_BOWL], "Which AFC champion won the title?")
    assert out["outcome"] == "grounded" and out["details"] == ["Super Bowl 50"]
    assert "lexical" in out["checked"] and out["method"] == "grounding"


def test_an_answer_named_only_in_a_sentence_about_something_else_is_partial():
    victoria = ("Victoria: Victoria is a state in the south-east of Australia. Melbourne is its capital and "
                "largest city.")
    out = check_grounding("Melbourne", [victoria], "What is the seat of government of the Commonwealth?")
    assert out["outcome"] == "partial" and "cover little of what the question asks" in out["checked"]


def test_the_question_words_no_passage_has_near_the_answer_weigh_most():
    # The NFL's season MVP is named in one passage; "Super Bowl 50", what the question is about, only in another.
    out = check_grounding("Cam Newton", [MVP, SUPER_BOWL], "Who was the MVP of Super Bowl 50?")
    assert out["outcome"] == "partial" and out["details"] == ["NFL MVP"]
    # One shared word was enough for the rule this replaced; here it covers too little of the question.
    assert check_grounding("Cam Newton", [MVP, SUPER_BOWL], "Who was named MVP for 2015?")["outcome"] == "grounded"


def test_the_sentence_before_the_title_and_other_word_forms_count():
    tesla = "Nikola Tesla: Tesla moved to New York in 1884. He died there on 7 January 1943."
    out = check_grounding("1943", [tesla], "In what year did Nikola Tesla die?")
    assert out["outcome"] == "grounded" and "covers 100%" in out["checked"]
    assert check_grounding("1884", [tesla], "In what year did Nikola Tesla die?")["outcome"] == "partial"


def test_a_lexical_check_cannot_tell_a_sporting_capital_from_the_capital():
    # The demo corpus's own sentence behind "Melbourne" for Australia's capital: every word of the question is in
    # it, so the check calls it grounded and says that it is lexical. Telling these apart needs more than words.
    victoria = ("Victoria (Australia): Culturally, Melbourne is home to a number of museums, art galleries and "
                "theatres and is also described as the \"sporting capital of Australia\".")
    out = check_grounding("Melbourne", [victoria], "What is the capital of Australia?")
    assert out["outcome"] == "grounded" and "lexical" in out["checked"]


def test_no_passage_shown_means_not_in_your_documents():
    out = check_grounding("Canberra", [])
    assert out["outcome"] == "not_in_documents" and "not from your documents" in out["checked"]


def test_an_answer_absent_from_the_passages_is_not_grounded():
    out = check_grounding("Peyton Manning", [SUPER_BOWL], "Who was the Broncos' quarterback?")
    assert out["outcome"] == "not_grounded" and out["details"] == ["Super Bowl 50"]
    assert "own knowledge" in out["checked"]


def test_an_answer_that_only_repeats_the_question_is_not_grounded_though_a_passage_names_it():
    rhine = "Rhine: The Rhine is a river in Central Europe. Of its rivers, only the Danube is larger than the Rhine."
    out = check_grounding("The Rhine", [rhine], "What river is larger than the Rhine?")
    assert out["outcome"] == "not_grounded" and "only repeats words of the question" in out["checked"]
    assert check_grounding("the Danube", [rhine], "What river is larger than the Rhine?")["outcome"] == "grounded"
    # Without the question nothing is repeated: the passage names it.
    assert check_grounding("The Rhine", [rhine])["outcome"] == "grounded"


def test_words_of_the_answer_scattered_in_a_passage_are_partial_support():
    assert check_grounding("the NFC champion", [SUPER_BOWL])["outcome"] == "grounded"  # in order, stop words aside
    assert check_grounding("Carolina champion", [SUPER_BOWL])["outcome"] == "partial"  # both words, not in order
    assert check_grounding("Panthers of Carolina", [SUPER_BOWL])["outcome"] == "partial"
    assert check_grounding("Broncos 2016 title", [SUPER_BOWL])["outcome"] == "partial"  # 2 of 3 words


def test_a_word_inside_another_word_is_not_support():
    assert check_grounding("Den", [SUPER_BOWL])["outcome"] == "not_grounded"


def test_the_general_expert_reports_its_grounding_in_the_answer(tmp_path: Path) -> None:
    hits = [{"text": SUPER_BOWL.split(": ", 1)[1], "source": "/docs/sb50.md", "title": "Super Bowl 50",
             "similarity": 0.7}]
    lm = DummyLM([{"reasoning": "The passage says so.", "answer": "Denver Broncos"},
                  {"reasoning": "I recall.", "answer": "Canberra"}])
    expert = RetrievalGeneralExpert(lambda q, k: hits if "Super Bowl" in q else [], k=3, min_similarity=0.35)
    with dspy.context(lm=lm):
        grounded = expert(question="Which team won Super Bowl 50, defeating the Panthers?")
        closed_book = expert(question="What is the capital of Australia?")
    assert "defeating the Panthers" in str(lm.history[0]["messages"])
    served = Served(label="local", model="test.gguf")
    answer = answer_from_prediction(grounded, served, "general", "explicit", None, 0.0)
    assert answer.verification.method == "grounding" and answer.verification.outcome == "grounded"
    assert answer.sources == [{"source": "/docs/sb50.md", "title": "Super Bowl 50"}]
    answer = answer_from_prediction(closed_book, served, "general", "explicit", None, 0.0)
    assert answer.verification.outcome == "not_in_documents" and answer.sources == []
    assert Settings().retrieval_min_similarity is not None  # the floor that decides "not in your documents"
