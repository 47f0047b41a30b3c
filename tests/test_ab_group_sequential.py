"""Group-sequential boundaries against Jennison & Turnbull's tables, gsDesign's test suite and the
ldbounds documentation; the always-valid lift sequence against its formula and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from orchestra.analysis import ab
from orchestra.errors import AnalysisError


@pytest.mark.parametrize(("looks", "constant"), [(2, 2.178), (3, 2.289), (4, 2.361), (5, 2.413)])
def test_pocock_constants_match_jennison_turnbull(looks, constant):
    # Jennison & Turnbull (2000), Group Sequential Methods, Table 2.1: C_P(K, alpha = 0.05).
    design = ab.pocock(looks)
    assert design.upper == pytest.approx((constant,) * looks, abs=1e-3)
    assert design.crossing().total == pytest.approx(0.05, abs=1e-6)


def test_obrien_fleming_matches_gsdesign():
    # gsDesign tests/testthat/test-base.R, "test.Deming.OFbound": gsDesign(k = 4, test.type = 2,
    # sfu = "OF") -> upper bounds round to 4.05, 2.86, 2.34, 2.02 (J&T Table 2.3: C_B(4) = 2.024).
    design = ab.obrien_fleming(4)
    assert [round(b, 2) for b in design.upper] == [4.05, 2.86, 2.34, 2.02]
    assert design.lower == tuple(-b for b in design.upper)


def test_inflation_factors_match_gsdesign_and_jennison_turnbull():
    # gsDesign test-base.R "test.JT.Pocock": k = 4, beta = 0.2 -> n.I[4] = 1.202 x fixed;
    # "test.JT.OFss": OF, k = 5, beta = 0.2 -> 1.028 (J&T Tables 2.2 and 2.4).
    assert ab.pocock(4).inflation_factor(0.8) == pytest.approx(1.202, abs=5e-4)
    assert ab.obrien_fleming(5).inflation_factor(0.8) == pytest.approx(1.028, abs=5e-4)


def test_repeated_naive_tests_inflate_alpha_as_armitage_mcpherson_rowe():
    # gsDesign test-base.R "test.Deming.gsProb" (Armitage, McPherson & Rowe, 1969): looking at
    # |z| > 1.96 at k equally spaced looks crosses the upper bound with probability
    # 0.042 (k = 2), 0.063 (k = 4), 0.097 (k = 10).
    for looks, expected in ((2, 0.042), (4, 0.063), (10, 0.097)):
        times = tuple(np.arange(1, looks + 1) / looks)
        naive = ab.GroupSequentialDesign("naive", times, (1.96,) * looks, (-1.96,) * looks, 0.05, 2)
        assert round(sum(naive.crossing().upper), 3) == expected


def test_lan_demets_obrien_fleming_spending_matches_ldbounds():
    # ldbounds vignette (Casper & Perez; Reboussin et al., 2000): ldBounds(seq(0.2, 1, length = 5))
    # -> bounds 4.8769 3.3569 2.6803 2.2898 2.0310, cumulative exit probabilities
    # 1.0777e-06 7.8830e-04 7.6161e-03 2.4424e-02 5.0000e-02.
    design = ab.alpha_spending([0.2, 0.4, 0.6, 0.8, 1.0], spending="obrien-fleming")
    assert design.upper == pytest.approx((4.8769, 3.3569, 2.6803, 2.2898, 2.0310), abs=2e-4)
    assert design.cumulative_alpha == pytest.approx(
        (1.0777e-06, 7.8830e-04, 7.6161e-03, 2.4424e-02, 0.05), rel=1e-4
    )
    assert np.cumsum(np.add(*[design.crossing().upper, design.crossing().lower]))[-1] == pytest.approx(
        0.05, abs=1e-6
    )


def test_lan_demets_linear_spending_and_drift_match_ldbounds():
    # ldbounds vignette: ldBounds(time, iuse = 3) -> 2.5758 2.4919 2.4108 2.3391 2.2754;
    # ldPower(power.fam, pow = 0.9) -> drift 3.455209.
    design = ab.alpha_spending(5, spending="linear")
    assert design.upper == pytest.approx((2.5758, 2.4919, 2.4108, 2.3391, 2.2754), abs=2e-4)
    assert design.drift_for_power(0.9) == pytest.approx(3.455209, abs=1e-3)


def test_unequally_spaced_looks_match_ldpower():
    # ldbounds vignette, ldPower(c(0.13, 0.4, 0.69, 0.9, 0.98, 1), zb = c(5.3666, 3.7102, 2.9728,
    # 2.5365, 2.2154, 1.9668), drift = 3.242) -> power 0.8996411, upper exit probabilities
    # 1.3483e-05 4.8468e-02 3.4279e-01 3.1827e-01 1.3325e-01 5.6851e-02.
    times = (0.13, 0.4, 0.69, 0.9, 0.98, 1.0)
    upper = (5.3666, 3.7102, 2.9728, 2.5365, 2.2154, 1.9668)
    design = ab.GroupSequentialDesign("given", times, upper, tuple(-u for u in upper), 0.05, 2)
    # Our integration converges to 0.8996657 (grids of 201 to 2001 points agree to 1e-9); ld98's
    # coarser grid printed 0.8996411, so the tolerance is that of the published digits' method.
    assert design.power(3.242) == pytest.approx(0.8996411, abs=5e-5)
    assert design.crossing(3.242).upper == pytest.approx(
        (1.3483e-05, 4.8468e-02, 3.4279e-01, 3.1827e-01, 1.3325e-01, 5.6851e-02), rel=2e-4
    )


def test_spending_at_unequal_looks_spends_exactly_the_function():
    # Lan & DeMets (1983): the cumulative crossing probability at t_k is alpha*(t_k), wherever
    # the looks fall.
    times = [0.15, 0.5, 0.55, 0.9, 1.0]
    for spending in ("obrien-fleming", "pocock"):
        design = ab.alpha_spending(times, spending=spending)
        crossing = design.crossing()
        cumulative = np.cumsum(np.add(crossing.upper, crossing.lower))
        if spending == "pocock":
            expected = [0.05 * math.log(1 + (math.e - 1) * t) for t in times]
        else:
            expected = [
                2 * (2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - 0.0125) / math.sqrt(t))) for t in times
            ]
        assert cumulative == pytest.approx(expected, abs=1e-6)


def test_decisions_and_bad_designs():
    design = ab.obrien_fleming(3)
    assert design.decide(4.0, 1) == "stop: B better"
    assert design.decide(-4.0, 1) == "stop: A better"
    assert design.decide(1.0, 1) == "continue" and design.decide(1.0, 3) == "stop: no difference shown"
    one_sided = ab.alpha_spending(3, sides=1, alpha=0.025)
    assert all(b == -math.inf for b in one_sided.lower)
    assert one_sided.upper == pytest.approx(ab.alpha_spending(3, alpha=0.05).upper, abs=1e-6)
    for call in (
        lambda: ab.alpha_spending([0.5, 0.4, 1.0]),
        lambda: ab.alpha_spending([0.0, 1.0]),
        lambda: ab.pocock(0),
        lambda: ab.pocock(3, alpha=1.5),
        lambda: ab.alpha_spending(3, spending="nonsense"),
        lambda: design.decide(1.0, 4),
    ):
        with pytest.raises(AnalysisError):
            call()


def test_lift_sequence_follows_the_mixture_formula_and_intersects():
    # Johari et al. (2022), "Always Valid Inference": half-width sqrt(2V(V+tau^2)/tau^2 *
    # (log(1/alpha) + log((V+tau^2)/V)/2)) around the estimate, V from the delta method.
    monitor = ab.LiftSequence(alpha=0.05, tau=0.05)
    a, b = ab.Summary(4000, 0.20, 0.16), ab.Summary(4000, 0.23, 0.177)
    look = monitor.update(a, b)
    lift = 0.23 / 0.20 - 1
    v = (0.177 / 4000) / 0.2**2 + (0.23**2) * (0.16 / 4000) / 0.2**4
    half = math.sqrt(2 * v * (v + 0.0025) / 0.0025 * (math.log(20) + 0.5 * math.log((v + 0.0025) / v)))
    assert look.effect == pytest.approx(lift)
    assert (look.ci_low, look.ci_high) == pytest.approx((lift - half, lift + half))
    later = monitor.update(ab.Summary(8000, 0.20, 0.16), ab.Summary(8000, 0.26, 0.19))
    assert later.ci_low >= look.ci_low and later.ci_high <= look.ci_high
    with pytest.raises(AnalysisError, match="cumulative"):
        monitor.update(ab.Summary(100, 0.2, 0.16), ab.Summary(100, 0.2, 0.16))
    with pytest.raises(AnalysisError, match="tau"):
        ab.LiftSequence(tau=0)


def test_lift_sequence_keeps_its_level_under_continuous_monitoring():
    rng = np.random.default_rng(11)
    misses = 0
    for _ in range(200):  # no true lift; 20 looks each
        monitor = ab.LiftSequence(alpha=0.05, tau=0.05)
        xa, xb = rng.binomial(1, 0.2, (20, 500)), rng.binomial(1, 0.2, (20, 500))
        for k in range(1, 21):
            a, b = xa[:k].ravel(), xb[:k].ravel()
            monitor.update(ab.Summary.from_values(a), ab.Summary.from_values(b))
        misses += monitor.stopped
    assert misses / 200 <= 0.05 + 0.03
