"""Whether a general answer can be found in the passages it was given: a lexical check, labelled as one.

The check costs no LM call. It looks for the answer's words in each passage shown to the model:
- no passage was shown (none cleared the similarity floor): `not_in_documents`, the answer is the
  model's own knowledge;
- the answer, as a phrase, is in a passage: `grounded`, naming that passage; the check says it is
  lexical, because a passage can name the answer without saying it answers the question (a passage
  on Victoria names Melbourne as a capital);
- most of its words are in one passage: `partial`;
- otherwise `not_grounded`: passages were shown, but the answer is not in them.
"""

from __future__ import annotations

import re
import time
from typing import Any

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_STOP = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "and", "or", "is", "was", "are", "were", "by", "with",
    "from", "as", "it", "its", "that", "this",
})


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def check_grounding(answer: str, context: list[str]) -> dict[str, Any]:
    """The `Verification` (as a dict) of a general answer against the passages shown to the model.

    Args:
        answer: The answer the model gave.
        context: The passages it was shown, each "title: text" (empty when none cleared the floor).

    Returns:
        A dict with the `Verification` fields: method "grounding", outcome, what was checked, the
        evidence, and the seconds it took.

    Example:
        >>> check_grounding("Denver Broncos", ["Super Bowl 50: The Denver Broncos defeated the Carolina Panthers."])[
        ...     "outcome"]
        'grounded'
        >>> check_grounding("Paris", [])["outcome"]
        'not_in_documents'
    """
    started = time.perf_counter()

    def result(outcome: str, checked: str, details: list[str]) -> dict[str, Any]:
        return {"method": "grounding", "outcome": outcome, "checked": checked, "details": details,
                "seconds": round(time.perf_counter() - started, 4)}

    if not context:
        return result("not_in_documents", "no passage from your documents was close enough to the question to be "
                      "shown to the model: the answer is its own knowledge, not from your documents", [])
    words = _words(answer)
    content = [w for w in words if w not in _STOP] or words
    if not content:
        return result("unchecked", "the answer has no words to look for in the passages", [])
    phrase = " ".join(content)
    best, best_title = 0.0, ""
    for passage in context:
        title = passage.split(":", 1)[0]
        passage_words = [w for w in _words(passage) if w not in _STOP]
        if f" {phrase} " in f" {' '.join(passage_words)} ":
            return result("grounded", f"the answer appears in the passage '{title}' (a lexical check: the passage "
                          "names the answer; it does not prove the passage says it answers the question)", [title])
        share = len(set(content) & set(passage_words)) / len(set(content))
        if share > best:
            best, best_title = share, title
    if best >= 0.5:
        return result("partial", f"{best:.0%} of the answer's words appear in the passage '{best_title}', not as "
                      "one phrase: the passages support it only in part", [best_title])
    return result("not_grounded", f"the answer is not in the {len(context)} passage(s) shown to the model: it is the "
                  "model's own knowledge, not from your documents", [p.split(":", 1)[0] for p in context])
