from __future__ import annotations

import pytest

from sme_mcp.optimize.stats import mcnemar_exact, paired_bootstrap, wilson_interval


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-3)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_mcnemar_counts_discordant_pairs_and_gives_exact_p():
    base = [True] * 10 + [False] * 10
    cand = [True] * 10 + [True] * 8 + [False] * 2
    b, c, p = mcnemar_exact(base, cand)
    assert (b, c) == (0, 8)
    assert p == pytest.approx(2 / 2**8)
    assert mcnemar_exact(base, base)[2] == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_paired_bootstrap_detects_a_clear_gain_and_not_a_null_one():
    base = [0.0] * 50 + [1.0] * 50
    better = [1.0] * 30 + [0.0] * 20 + [1.0] * 50
    low, high, p = paired_bootstrap(base, better, rounds=2000)
    assert low > 0 and high <= 0.6 and p < 0.01
    low, high, p = paired_bootstrap(base, base, rounds=500)
    assert low == high == 0.0 and p == 1.0
