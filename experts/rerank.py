"""The order in which retrieved passages are shown: the search's, fused with a lexical reading of the question.

The hybrid search ranks chunks by embedding and BM25 over the whole chunk; a passage whose single sentence
answers the question can rank below one that shares many words with it overall. `fused_order` adds a
second ranking, by how much of the question the passage's best sentence covers
(`experts.grounding.passage_support`), and fuses both by reciprocal rank. bench/retrieval_rerank.py
measures it: over a pool of 10 hits, the share of SQuAD questions whose supporting passage is among
the 3 shown (the choice was made on one half of the questions and is reported on the other).
"""

from __future__ import annotations

RRF_K = 60  # the usual reciprocal-rank-fusion constant: ranks matter, not score scales


def fused_order(question: str, passages: list[str]) -> list[int]:
    """The passages' indices, best first: reciprocal-rank fusion of their given order (the search's) and
    their order by lexical support of the question; ties keep the given order.

    Args:
        question: The question.
        passages: "title: text" per passage, in the search's order.

    Example:
        >>> fused_order("Who won Super Bowl 50?", ["Teams: Many teams play football.", "Rules: Games last an hour.",
        ...                                        "Games: The Broncos won Super Bowl 50 in 2016."])
        [0, 2, 1]
    """
    from sme_mcp.experts.grounding import passage_support

    support = passage_support(question, passages)
    given = range(len(passages))
    lexical = {i: rank for rank, i in enumerate(sorted(given, key=lambda i: (-support[i], i)))}
    return sorted(given, key=lambda i: (-(1 / (RRF_K + i) + 1 / (RRF_K + lexical[i])), i))
