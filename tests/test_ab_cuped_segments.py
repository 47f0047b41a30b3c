"""CUPED and regression adjustment (Deng et al., 2013; Lin, 2013) and heterogeneous effects
(the treatment x segment interaction against R's anova on the warpbreaks data)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from orchestra.analysis import ab
from orchestra.errors import AnalysisError


def _arms(seed: int = 0, n: int = 800, lift: float = 0.05):
    rng = np.random.default_rng(seed)
    x_a, x_b = rng.normal(0, 1, n), rng.normal(0, 1, n)
    y_a = 0.5 + 0.3 * x_a + rng.normal(0, 0.2, n)
    y_b = 0.5 + lift + 0.3 * x_b + rng.normal(0, 0.2, n)
    return y_a, y_b, x_a, x_b


def test_cuped_variance_reduction_is_rho_squared():
    # Deng, Xu, Kohavi & Walker (2013), eq. 4: Var(Y_cv) = Var(Y) (1 - rho^2) with
    # theta = cov(Y, X) / var(X); exact for the sample moments of the pooled data.
    y_a, y_b, x_a, x_b = _arms()
    result = ab.cuped(y_a, y_b, x_a, x_b)
    rho = np.corrcoef(np.r_[x_a, x_b], np.r_[y_a, y_b])[0, 1]
    assert result.details["pooled_variance_reduction"] == pytest.approx(rho**2, rel=1e-10)
    assert result.details["variance_reduction"] == pytest.approx(rho**2, abs=0.03)
    raw = ab.welch(y_a, y_b)
    width_ratio = (result.ci_high - result.ci_low) / (raw.ci_high - raw.ci_low)
    assert width_ratio == pytest.approx(np.sqrt(1 - result.details["variance_reduction"]), rel=1e-3)
    assert result.ci_low < 0.05 < result.ci_high and result.method == "CUPED (Welch's t-test)"


def test_cuped_theta_is_the_pooled_regression_slope():
    y_a, y_b, x_a, x_b = _arms(1)
    result = ab.cuped(y_a, y_b, x_a, x_b)
    slope = sm.OLS(np.r_[y_a, y_b], sm.add_constant(np.r_[x_a, x_b])).fit().params[1]
    assert result.details["theta"] == pytest.approx(slope)
    adjusted_a = y_a - slope * (x_a - np.r_[x_a, x_b].mean())
    adjusted_b = y_b - slope * (x_b - np.r_[x_a, x_b].mean())
    assert result.effect == pytest.approx(adjusted_b.mean() - adjusted_a.mean())


def test_paired_cuped_adjusts_the_differences():
    rng = np.random.default_rng(2)
    difficulty = rng.random(500)
    a = 1 - difficulty + rng.normal(0, 0.1, 500)
    b = a + 0.02 + 0.2 * (difficulty - 0.5) + rng.normal(0, 0.05, 500)
    result = ab.cuped(a, b, difficulty, paired=True)
    assert result.details["variance_reduction"] > 0.5
    assert result.effect == pytest.approx((b - a).mean(), abs=1e-12)  # centred covariate


def test_regression_adjustment_matches_lins_interacted_ols():
    # Lin (2013): OLS of Y on T, centred X and T x centred X; HC2 standard errors.
    y_a, y_b, x_a, x_b = _arms(3)
    result = ab.regression_adjustment(y_a, y_b, x_a, x_b)
    t = np.r_[np.zeros(800), np.ones(800)]
    xc = np.r_[x_a, x_b] - np.r_[x_a, x_b].mean()
    fit = sm.OLS(np.r_[y_a, y_b], np.column_stack([np.ones(1600), t, xc, t * xc])).fit(cov_type="HC2")
    assert result.effect == pytest.approx(fit.params[1]) and result.details["se"] == pytest.approx(fit.bse[1])
    assert result.details["variance_reduction"] > 0.5
    with pytest.raises(AnalysisError, match="constant"):
        ab.cuped(y_a, y_b, np.ones(800), np.ones(800))


# R's warpbreaks (Tippett, 1950, p. 106): breaks per loom by wool (A, B) and tension (L, M, H).
WARPBREAKS = {
    ("A", "L"): [26, 30, 54, 25, 70, 52, 51, 26, 67],
    ("A", "M"): [18, 21, 29, 17, 12, 18, 35, 30, 36],
    ("A", "H"): [36, 21, 24, 18, 10, 43, 28, 15, 26],
    ("B", "L"): [27, 14, 29, 19, 29, 31, 41, 20, 44],
    ("B", "M"): [42, 26, 19, 16, 39, 28, 21, 39, 29],
    ("B", "H"): [20, 21, 24, 17, 13, 15, 15, 16, 28],
}


def warpbreaks() -> pl.DataFrame:
    return pl.DataFrame(
        [{"wool": w, "tension": t, "breaks": float(v)} for (w, t), vs in WARPBREAKS.items() for v in vs]
    )


def test_interaction_test_matches_r_anova_on_warpbreaks():
    # R ?warpbreaks: anova(lm(breaks ~ wool * tension, data = warpbreaks)) ->
    # wool:tension Df 2, F value 4.1891, Pr(>F) 0.021044.
    result = ab.interaction_test(warpbreaks(), outcome="breaks", arm="wool", segment="tension")
    assert result.df == 2
    assert result.statistic == pytest.approx(4.1891, abs=1e-4)
    assert result.p_value == pytest.approx(0.021044, abs=1e-6)


def test_segment_effects_are_adjusted_and_a_thin_segment_is_not_computable():
    frame = pl.concat(
        [
            warpbreaks(),
            pl.DataFrame({"wool": ["A", "B", "B"], "tension": ["X", "X", "X"], "breaks": [1.0, 2.0, 3.0]}),
        ]
    )
    results = ab.segment_effects(frame, outcome="breaks", arm="wool", segment="tension", correction="holm")
    by_segment = {r.metric: r for r in results}
    low = by_segment["breaks [tension=L]"]
    assert low.effect == pytest.approx(np.mean(WARPBREAKS[("B", "L")]) - np.mean(WARPBREAKS[("A", "L")]))
    assert low.adjustment == "holm" and low.p_adjusted == pytest.approx(min(1.0, 3 * low.p_value))
    thin = by_segment["breaks [tension=X]"]
    assert not thin.computable and "at least 2" in thin.verdict
    with pytest.raises(AnalysisError, match="exactly two arms"):
        ab.segment_effects(
            frame.with_columns(pl.lit("C").alias("wool")).vstack(frame),
            outcome="breaks",
            arm="wool",
            segment="tension",
        )
