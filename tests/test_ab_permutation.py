"""Permutation tests against Fisher's (1935) analysis of Darwin's Zea mays data and Good's exact
example."""

from __future__ import annotations

import numpy as np
import pytest

from orchestra.analysis import ab
from orchestra.errors import AnalysisError

# Darwin's 15 pairs of Zea mays, height of the crossed minus the self-fertilised plant (eighths of
# an inch), as analysed by Fisher (1935), The Design of Experiments, section 21.
DARWIN = [49, -67, 8, 16, 6, 23, 28, 41, 14, 29, 56, 24, 75, 60, -48]


def test_exact_paired_permutation_matches_fisher_on_darwins_zea_mays():
    # Fisher: of the 2^15 = 32,768 sign patterns, 863 give a sum of at least the observed 314,
    # and 1,726 are at least as extreme on either side: two-sided p = 1726 / 32768 = 0.0527.
    result = ab.permutation_test(np.zeros(15), DARWIN, paired=True, resamples=40_000)
    assert result.details["exact"] and result.details["rearrangements"] == 32_768
    assert result.p_value == pytest.approx(1726 / 32768)
    greater = ab.permutation_test(np.zeros(15), DARWIN, paired=True, alternative="greater", resamples=40_000)
    assert greater.p_value == pytest.approx(863 / 32768)
    assert result.effect == pytest.approx(314 / 15)


def test_exact_two_sample_permutation_matches_good():
    # Good (2005), Permutation, Parametric and Bootstrap Tests of Hypotheses, ch. 3: treated
    # 121, 118, 110 vs controls 34, 12, 22; the observed split is the most extreme of
    # C(6, 3) = 20, so the one-sided p is 1 / 20.
    result = ab.permutation_test([34, 12, 22], [121, 118, 110], alternative="greater")
    assert result.details["exact"] and result.p_value == pytest.approx(0.05)
    assert "no interval" in result.verdict


def test_monte_carlo_is_seeded_and_close_to_the_exact_answer():
    rng = np.random.default_rng(8)
    a, b = rng.normal(0, 1, 8), rng.normal(0.8, 1, 8)
    exact = ab.permutation_test(a, b, resamples=20_000)  # C(16, 8) = 12,870 splits: exact
    first = ab.permutation_test(a, b, resamples=10_000, seed=1)
    again = ab.permutation_test(a, b, resamples=10_000, seed=1)
    assert exact.details["exact"] and not first.details["exact"]
    assert first.p_value == again.p_value
    assert first.p_value == pytest.approx(exact.p_value, abs=0.01)
    median = ab.permutation_test(a, b, statistic=np.median, resamples=2_000)
    assert median.effect == pytest.approx(np.median(b) - np.median(a))
    with pytest.raises(AnalysisError, match="resamples"):
        ab.permutation_test(a, b, resamples=10)
