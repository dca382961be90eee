"""Whether a general answer can be found in the passages it was given: a lexical check, labelled as one.

The check costs no LM call. It looks for the answer's words in each passage shown to the model:
- no passage was shown (none cleared the similarity floor): `not_in_documents`, the answer is the
  model's own knowledge;
- the answer, as a phrase, is in a sentence that, with the sentence before it and the passage's
  title, covers enough of what the question asks (`support`): `grounded`, naming that passage. The
  question's words are weighted by how rare they are among the sentences shown, so a word every
  passage has ("Australia" in passages about Victoria) counts little and a word none has ("Super
  Bowl 50" is not near "Cam Newton") weighs most; a word matches its other forms ("died"/"die",
  "returning"/"returned"). The check says it is lexical: it does not prove the sentence answers the
  question, and a sentence about something else that holds the question's words passes it (asked for
  Australia's capital, "Melbourne" came out grounded by a sentence on Victoria, the Australian state,
  whose capital it is). Asking the model to confirm the sentence did not separate right answers from
  wrong ones better (bench/grounding_judge.py; `RetrievalGeneralExpert`'s `judge_grounding`);
- the answer is in a passage but in no sentence that covers the question, or most of its words are
  in one passage: `partial`;
- otherwise `not_grounded`: passages were shown, but the answer is not in them, or it only repeats
  words of the question ("What river is larger than the Rhine?" answered "The Rhine"), which a small
  model does when the passages do not say; a sentence naming it proves nothing.

How well this separates right answers from wrong ones is measured by bench/grounding.py (gold
answers against wrong answers of the same shape taken from the passages), where `SUPPORT` was chosen
on one half of the SQuAD questions and is reported on the other.
"""

from __future__ import annotations

import math
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
    # what kind of answer is asked for: the answer is it, the sentence need not say the word
    "year", "date", "day", "month", "century", "number", "amount", "percentage", "percent", "called", "type",
    "kind", "long",
})
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
PREFIX = 5  # words sharing their first five letters are the same word ("returning"/"returned")
SUPPORT = 0.35  # rarity-weighted share of the question a sentence must cover: chosen by bench/grounding.py


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _content(text: str) -> list[str]:
    return [w for w in _words(text) if w not in _STOP]


def _has_phrase(words: list[str], phrase: str) -> bool:
    return f" {phrase} " in f" {' '.join(words)} "


def _same_word(a: str, b: str) -> bool:
    """Whether two words are one word in another form: equal, sharing their first `PREFIX` letters, or one
    the other plus at most two letters ("die"/"died", "return"/"returns"); numbers only when equal."""
    if a == b:
        return True
    if not (a.isalpha() and b.isalpha()):
        return False
    if len(a) >= PREFIX and len(b) >= PREFIX and a[:PREFIX] == b[:PREFIX]:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 3 and len(long) - len(short) <= 2 and long.startswith(short)


def _support(asked: set[str], windows: list[set[str]]) -> list[float]:
    """For each window (a sentence's words with the sentence before it and the title), the share of the
    question's words it holds, each weighted by its rarity among the windows (1.0 when nothing is asked)."""
    if not asked:
        return [1.0] * len(windows)
    n = len(windows)
    # In sorted order: summed in a set's order, which changes with each process's string hashing, near-equal
    # shares came out a rounding error apart and ties broke differently from run to run.
    holds = {q: [any(_same_word(q, w) for w in window) for window in windows] for q in sorted(asked)}
    weight = {q: math.log((n + 1) / (sum(found) + 0.5)) for q, found in holds.items()}
    total = sum(weight.values())
    return [sum(weight[q] for q in holds if holds[q][i]) / total for i in range(n)]


def _sentences(context: list[str]) -> tuple[list[tuple[int, str, list[str], str]], list[set[str]]]:
    """Each passage's title and sentences as (passage index, title, words, window text), and each one's window:
    its words, the previous sentence's and the title's (a sentence often names its subject only by "he" or "it").
    The window text is "title: previous sentence sentence", the evidence a reader (or `judge`) is shown."""
    sentences: list[tuple[int, str, list[str], str]] = []
    windows: list[set[str]] = []
    for i, passage in enumerate(context):
        title, _, text = passage.partition(": ")
        title_words, previous, previous_text = _content(title), set(), ""
        sentences.append((i, title, title_words, title))
        windows.append(set(title_words))
        for sentence in _SENTENCE.split(text):
            words = _content(sentence)
            sentences.append((i, title, words, f"{title}: {previous_text} {sentence}".replace(":  ", ": ")))
            windows.append(set(words) | previous | set(title_words))
            previous, previous_text = set(words), sentence
    return sentences, windows


def passage_support(question: str, context: list[str]) -> list[float]:
    """For each passage, how much of the question its best sentence covers (0 to 1, rarity-weighted as in
    `check_grounding`): a ranking of passages by whether one of their sentences is about what is asked.

    Example:
        >>> passage_support("Who won Super Bowl 50?", ["Broncos: The Broncos won Super Bowl 50.",
        ...                                             "Panthers: The Panthers lost in 2016."])
        [1.0, 0.0]
    """
    asked = set(_content(question)) - _QUESTION_WORDS
    sentences, windows = _sentences(context)
    best = [0.0] * len(context)
    for (i, _, _, _), share in zip(sentences, _support(asked, windows), strict=True):
        best[i] = max(best[i], share)
    return best


def repeats_question(answer: str, question: str) -> bool:
    """Whether every word of the answer (stop words aside) is a word of the question: "What river is larger than
    the Rhine?" answered "The Rhine". A small model answers so when the passages do not say.

    Example:
        >>> repeats_question("The Rhine", "What river is larger than the Rhine?"), repeats_question("Danube", "Rhine?")
        (True, False)
    """
    content = _content(answer) or _words(answer)
    return bool(content) and bool(question) and set(content) <= set(_content(question))


def check_grounding(answer: str, context: list[str], question: str = "") -> dict[str, Any]:
    """The `Verification` (as a dict) of a general answer against the passages shown to the model.

    Args:
        answer: The answer the model gave.
        context: The passages it was shown, each "title: text" (empty when none cleared the floor).
        question: The question; a sentence naming the answer supports it only if, with the sentence
            before it and the title, it covers `SUPPORT` of the question's words (other than the
            answer's and question words such as "who"), weighted by rarity. Empty: any sentence naming
            the answer does.

    Returns:
        A dict with the `Verification` fields: method "grounding", outcome, what was checked, the
        evidence, and the seconds it took.

    Example:
        >>> passage = "Super Bowl 50: The Denver Broncos defeated the Carolina Panthers."
        >>> check_grounding("Denver Broncos", [passage], "Who defeated the Carolina Panthers?")["outcome"]
        'grounded'
        >>> check_grounding("Denver Broncos", [passage], "Who won the 2016 Pro Bowl?")["outcome"]
        'partial'
        >>> check_grounding("the Carolina Panthers", [passage], "Who defeated the Carolina Panthers?")["outcome"]
        'not_grounded'
        >>> check_grounding("Paris", [])["outcome"]
        'not_in_documents'
    """
    return grounding_with_evidence(answer, context, question)[0]


def grounding_with_evidence(answer: str, context: list[str], question: str = "") -> tuple[dict[str, Any], str | None]:
    """`check_grounding`'s verdict, and for a `grounded` one the sentence behind it, as "title: previous sentence
    sentence" (what a reader, or the general expert's judge, is shown); None for any other outcome.

    Example:
        >>> passage = "Super Bowl 50: The game was in 2016. The Denver Broncos defeated the Carolina Panthers."
        >>> grounding_with_evidence("Denver Broncos", [passage], "Who defeated the Carolina Panthers?")[1]
        'Super Bowl 50: The game was in 2016. The Denver Broncos defeated the Carolina Panthers.'
    """
    started = time.perf_counter()

    def result(outcome: str, checked: str, details: list[str],
               evidence: str | None = None) -> tuple[dict[str, Any], str | None]:
        return {"method": "grounding", "outcome": outcome, "checked": checked, "details": details,
                "seconds": round(time.perf_counter() - started, 4)}, evidence

    if not context:
        return result("not_in_documents", "no passage from your documents was close enough to the question to be "
                      "shown to the model: the answer is its own knowledge, not from your documents", [])
    content = _content(answer) or _words(answer)  # an answer of stop words only is looked for as it is
    if not content:
        return result("unchecked", "the answer has no words to look for in the passages", [])
    if repeats_question(answer, question):
        return result("not_grounded", f"the answer only repeats words of the question ('{answer.strip()[:80]}'): it "
                      "names nothing a passage could support as the answer", [])
    phrase = " ".join(content)
    asked = set(_content(question)) - _QUESTION_WORDS - set(content)
    named_in, best, best_title = "", 0.0, ""
    for passage in context:
        title = passage.partition(": ")[0]
        passage_words = _content(passage)
        if _has_phrase(passage_words, phrase):
            named_in = named_in or title
        else:
            share = len(set(content) & set(passage_words)) / len(set(content))
            if share > best:
                best, best_title = share, title
    sentences, windows = _sentences(context)
    support = _support(asked, windows)
    covered = [(share, title, text) for (_, title, words, text), share in zip(sentences, support, strict=True)
               if _has_phrase(words, phrase)]
    if covered:
        share, title, text = max(covered, key=lambda c: c[0])
        if share >= SUPPORT:
            return result("grounded", f"the answer appears in the passage '{title}', in a sentence that covers "
                          f"{share:.0%} of what the question asks (a lexical check: it does not prove the sentence "
                          "answers the question)", [title], evidence=text)
        named_in = title
    if named_in:
        return result("partial", f"the passage '{named_in}' names the answer, but its sentences cover little of what "
                      "the question asks: the passages may not say it answers the question", [named_in])
    if best >= 0.5:
        return result("partial", f"{best:.0%} of the answer's words appear in the passage '{best_title}', not as "
                      "one phrase: the passages support it only in part", [best_title])
    return result("not_grounded", f"the answer is not in the {len(context)} passage(s) shown to the model: it is the "
                  "model's own knowledge, not from your documents", [p.split(":", 1)[0] for p in context])
