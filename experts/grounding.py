"""Whether a general answer can be found in the passages it was given: a lexical check, labelled as one.

The check costs no LM call. It looks for the answer's words in each passage shown to the model:
- no passage was shown (none cleared the similarity floor): `not_in_documents`, the answer is the
  model's own knowledge;
- the answer, as a phrase, is in a sentence that also shares a word with the question: `grounded`,
  naming that passage. The check says it is lexical: a sentence can name the answer and a word of
  the question without answering it ("Melbourne is the capital of the Australian state of Victoria");
- the answer is in a passage but in no sentence about the question (a passage on the NFL's season
  MVP names Cam Newton; the question asked about Super Bowl 50's MVP), or most of its words are in
  one passage: `partial`;
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


_QUESTION_WORDS = frozenset({
    "what", "who", "whom", "whose", "when", "where", "which", "why", "how", "many", "much", "did", "do", "does",
    "name", "has", "have", "had", "be", "been", "he", "she", "they", "his", "her", "their",
})
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _content(text: str) -> list[str]:
    return [w for w in _words(text) if w not in _STOP]


def _has_phrase(words: list[str], phrase: str) -> bool:
    return f" {phrase} " in f" {' '.join(words)} "


def check_grounding(answer: str, context: list[str], question: str = "") -> dict[str, Any]:
    """The `Verification` (as a dict) of a general answer against the passages shown to the model.

    Args:
        answer: The answer the model gave.
        context: The passages it was shown, each "title: text" (empty when none cleared the floor).
        question: The question; a sentence naming the answer supports it only if it shares one of the
            question's words (other than the answer's and question words such as "who"). Empty: any
            sentence naming the answer does.

    Returns:
        A dict with the `Verification` fields: method "grounding", outcome, what was checked, the
        evidence, and the seconds it took.

    Example:
        >>> passage = "Super Bowl 50: The Denver Broncos defeated the Carolina Panthers."
        >>> check_grounding("Denver Broncos", [passage], "Who defeated the Carolina Panthers?")["outcome"]
        'grounded'
        >>> check_grounding("Denver Broncos", [passage], "Who won the 2016 Pro Bowl?")["outcome"]
        'partial'
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
    content = _content(answer) or _words(answer)  # an answer of stop words only is looked for as it is
    if not content:
        return result("unchecked", "the answer has no words to look for in the passages", [])
    phrase = " ".join(content)
    asked = set(_content(question)) - _QUESTION_WORDS - set(content)
    named_in, best, best_title = "", 0.0, ""
    for passage in context:
        title, _, text = passage.partition(": ")
        passage_words = _content(passage)
        if not _has_phrase(passage_words, phrase):
            share = len(set(content) & set(passage_words)) / len(set(content))
            if share > best:
                best, best_title = share, title
            continue
        named_in = named_in or title
        sentences = [_content(x) for x in (title, *_SENTENCE.split(text))]
        if not asked or any(_has_phrase(words, phrase) and asked & set(words) for words in sentences):
            return result("grounded", f"the answer appears in the passage '{title}', in a sentence that shares words "
                          "with the question (a lexical check: it does not prove the sentence answers the question)",
                          [title])
    if named_in:
        return result("partial", f"the passage '{named_in}' names the answer, but in no sentence that shares a word "
                      "with the question: the passages may not say it answers the question", [named_in])
    if best >= 0.5:
        return result("partial", f"{best:.0%} of the answer's words appear in the passage '{best_title}', not as "
                      "one phrase: the passages support it only in part", [best_title])
    return result("not_grounded", f"the answer is not in the {len(context)} passage(s) shown to the model: it is the "
                  "model's own knowledge, not from your documents", [p.split(":", 1)[0] for p in context])
