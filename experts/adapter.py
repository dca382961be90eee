"""DSPy's ChatAdapter, reading the field markers a small model writes at the end of a line.

ChatAdapter asks the model to put each output field under its own `[[ ## name ## ]]` line and
to end with `[[ ## completed ## ]]`, and it only recognises a marker that starts a line. The
1.5B model sometimes writes the marker right after the text: `CBS[[ ## completed ## ]]` came back
as the answer "CBS[[ ## completed ## ]]" (3 of 60 answers of the general expert without reasoning,
receipts/eval-general-custom-20261207T041225Z.json), and `... so 42. [[ ## answer ## ]] 42` loses
the answer field, which costs a second LM call through the JSON fallback or fails the question.
Prompts are unchanged: only the reply is read more leniently.
"""

from __future__ import annotations

import re
from typing import Any

import dspy

# A marker preceded by text on its own line: it is moved to the start of a new line.
_INLINE_MARKER = re.compile(r"(?<=\S)[ \t]*(\[\[ ## \w+ ## \]\])")


def split_inline_markers(completion: str) -> str:
    """The completion with every field marker that follows text on a line moved to a line of its own.

    Example:
        >>> split_inline_markers("CBS[[ ## completed ## ]]")
        'CBS\\n[[ ## completed ## ]]'
        >>> split_inline_markers("[[ ## answer ## ]]\\n1969\\n\\n[[ ## completed ## ]]")  # already well formed
        '[[ ## answer ## ]]\\n1969\\n\\n[[ ## completed ## ]]'
    """
    return _INLINE_MARKER.sub(r"\n\1", completion)


class LenientChatAdapter(dspy.ChatAdapter):
    """`dspy.ChatAdapter` whose `parse` also finds markers written at the end of a line (see the module docstring).

    Example:
        >>> class QA(dspy.Signature):
        ...     question: str = dspy.InputField()
        ...     answer: str = dspy.OutputField()
        >>> LenientChatAdapter().parse(QA, "[[ ## answer ## ]]\\nCBS[[ ## completed ## ]]")
        {'answer': 'CBS'}
    """

    def parse(self, signature: Any, completion: str) -> dict[str, Any]:
        return super().parse(signature, split_inline_markers(completion))


def lm_context(lm: Any) -> Any:
    """`dspy.context` with `lm` and, unless the caller chose an adapter, the `LenientChatAdapter`.

    Every expert and optimizer call enters its LM through this, so they all read replies the same way.

    Example:
        >>> with lm_context(dspy.utils.DummyLM([{"answer": "CBS"}])):
        ...     dspy.settings.adapter.__class__.__name__
        'LenientChatAdapter'
    """
    return dspy.context(lm=lm, adapter=dspy.settings.adapter or LenientChatAdapter())
