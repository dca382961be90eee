"""Replies whose field markers follow text on the same line are read as the model meant them."""

from __future__ import annotations

import dspy
import pytest
from dspy.utils import DummyLM
from dspy.utils.exceptions import AdapterParseError

from sme_mcp.experts.adapter import LenientChatAdapter, lm_context, split_inline_markers
from sme_mcp.experts.general_rag import RetrievalGeneralExpert


class QA(dspy.Signature):
    question: str = dspy.InputField()
    reasoning: str = dspy.OutputField()
    answer: str = dspy.OutputField()


INLINE_ANSWER = "[[ ## reasoning ## ]]\nThe broadcaster was CBS. [[ ## answer ## ]] CBS\n\n[[ ## completed ## ]]"
INLINE_END = "[[ ## reasoning ## ]]\nIt aired on CBS.\n\n[[ ## answer ## ]]\nCBS[[ ## completed ## ]]"


def test_a_marker_after_text_starts_a_field_as_if_it_began_the_line():
    assert LenientChatAdapter().parse(QA, INLINE_ANSWER) == {"reasoning": "The broadcaster was CBS.", "answer": "CBS"}
    assert LenientChatAdapter().parse(QA, INLINE_END) == {"reasoning": "It aired on CBS.", "answer": "CBS"}
    # DSPy's own adapter loses the answer in the first reply and keeps the marker in the second.
    with pytest.raises(AdapterParseError):
        dspy.ChatAdapter().parse(QA, INLINE_ANSWER)
    assert dspy.ChatAdapter().parse(QA, INLINE_END)["answer"] == "CBS[[ ## completed ## ]]"


def test_well_formed_replies_and_text_with_brackets_are_left_alone():
    reply = "[[ ## reasoning ## ]]\nA list [[1, 2]] is nested.\n\n[[ ## answer ## ]]\n[[1, 2]]\n\n[[ ## completed ## ]]"
    assert split_inline_markers(reply) == reply
    assert LenientChatAdapter().parse(QA, reply) == {"reasoning": "A list [[1, 2]] is nested.", "answer": "[[1, 2]]"}


def test_experts_read_replies_through_it_unless_the_caller_chose_an_adapter():
    lm = DummyLM([{"reasoning": "The passage names it.", "answer": "Sicily[[ ## completed ## ]]"}])
    with lm_context(lm):
        pred = RetrievalGeneralExpert(lambda q, k: [], k=1)(question="Where is Mount Etna?")
    assert pred.answer == "Sicily"
    with dspy.context(adapter=dspy.JSONAdapter()), lm_context(lm):
        assert isinstance(dspy.settings.adapter, dspy.JSONAdapter)
