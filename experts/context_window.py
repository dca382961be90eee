"""Passages cut to the sentences about the question, so the model reads less before it answers.

On a 2-core machine the model reads about 30-90 prompt tokens a second, and the three 800-character
passages the general expert shows are most of its prompt: reading them is most of what a user waits for.
A passage's answer is usually in the sentence that covers most of the question, or next to it.
`sentence_window` keeps, per passage, its best `keep` sentences with `window` sentences either side and
drops the rest. Sentences are ranked as `experts.grounding` ranks them, by the rarity-weighted share of
the question's words they hold: first with the passage's title only, then (ties) also with the sentence
before them.

bench/context_window.py measures what each (keep, window) leaves out: the share of SQuAD questions whose
gold answer is still in the passages shown, against the characters shown.
"""

from __future__ import annotations

from sme_mcp.experts.grounding import _QUESTION_WORDS, _SENTENCE, _content, _support

GAP = " … "  # between kept sentences that were not next to each other in the passage


def sentence_window(question: str, passages: list[str], keep: int = 1, window: int = 1) -> list[str]:
    """Each passage ("title: text") cut to its `keep` best sentences for `question` and `window` sentences
    either side, in the passage's order; "…" marks where sentences were left out. `keep` 0 leaves every
    passage whole.

    Args:
        question: The question.
        passages: "title: text" per passage, in the order they will be shown.
        keep: Sentences kept per passage for their own sake (the best-supported ones; ties: the earlier).
        window: Sentences kept before and after each of those.

    Returns:
        The passages, same order and titles, each shortened (or whole when it has `keep` + 2 * `window`
        sentences or fewer).

    Example:
        >>> passage = ("Rhine: The Rhine rises in Switzerland. It is 1,230 km long. "
        ...            "Boats carry coal on it. Its delta is in the Netherlands.")
        >>> sentence_window("Where is the delta of the Rhine?", [passage], keep=1, window=0)
        ['Rhine: … Its delta is in the Netherlands.']
        >>> sentence_window("How long is the Rhine?", [passage], keep=1, window=1)
        ['Rhine: The Rhine rises in Switzerland. It is 1,230 km long. …']
    """
    if keep <= 0:
        return list(passages)
    asked = set(_content(question)) - _QUESTION_WORDS
    split: list[tuple[str, list[str]]] = []
    windows: list[set[str]] = []  # a sentence's words with the title's and the previous sentence's
    owns: list[set[str]] = []  # its words with the title's only
    for passage in passages:
        title, _, text = passage.partition(": ")
        sentences = [s for s in _SENTENCE.split(text.strip()) if s]
        title_words, previous = set(_content(title)), set()
        for sentence in sentences:
            words = set(_content(sentence))
            windows.append(words | previous | title_words)
            owns.append(words | title_words)
            previous = words
        split.append((title, sentences))
    support = iter(zip(_support(asked, owns), _support(asked, windows), strict=True))
    shown: list[str] = []
    for title, sentences in split:
        scores = [next(support) for _ in sentences]
        if len(sentences) <= keep + 2 * window:
            shown.append(f"{title}: {' '.join(sentences)}")
            continue
        # By a sentence's own words first: ranked by its window, the sentence after the best one would tie with
        # it and take a second slot with nothing new (ranking by own words kept more answers on the tune half).
        best = sorted(range(len(sentences)), key=lambda j: (-scores[j][0], -scores[j][1], j))[:keep]
        kept = sorted({j + d for j in best for d in range(-window, window + 1) if 0 <= j + d < len(sentences)})
        text = sentences[kept[0]] + "".join((" " if j == before + 1 else GAP) + sentences[j]
                                            for before, j in zip(kept, kept[1:], strict=False))
        lead = "… " if kept[0] > 0 else ""
        tail = " …" if kept[-1] < len(sentences) - 1 else ""
        shown.append(f"{title}: {lead}{text}{tail}")
    return shown
