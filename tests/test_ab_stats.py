"""A/B statistics against scipy/statsmodels and published worked examples, with edge cases."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportions_ztest

from orchestra.analysis import ab
from orchestra.analysis.winrate import length_controlled_win_rate
from orchestra.errors import AnalysisError

RNG = np.random.default_rng(0)
A = RNG.normal(0.30, 0.20, 60)
B = RNG.normal(0.38, 0.25, 55)


def test_welch_matches_scipy():
    result = ab.welch(A, B)
    reference = stats.ttest_ind(B, A, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert result.effect == pytest.approx(B.mean() - A.mean())


def test_welch_worked_by_hand():
    # Welch-Satterthwaite by hand: t = (mean_b - mean_a) / sqrt(s_a^2/n_a + s_b^2/n_b),
    # df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1)).
    a = np.array([19.1, 21.0, 17.5, 20.2, 18.7, 22.4, 19.9])
    b = np.array([23.4, 26.8, 20.1, 29.3, 24.7, 21.5])
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (b.mean() - a.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    result = ab.welch(a, b)
    assert result.details["t"] == pytest.approx(t) and result.details["df"] == pytest.approx(df)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), df))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (b.mean() - a.mean() - half, b.mean() - a.mean() + half)
    )


def test_paired_t_and_wilcoxon_match_scipy():
    after = A + RNG.normal(0.05, 0.05, A.size)
    paired = ab.paired_t(A, after)
    reference = stats.ttest_rel(after, A)
    assert paired.p_value == pytest.approx(reference.pvalue)
    assert paired.ci_low == pytest.approx(reference.confidence_interval().low)
    signed = ab.wilcoxon(A, after)
    assert signed.p_value == pytest.approx(stats.wilcoxon(after - A, zero_method="pratt").pvalue)


def test_mann_whitney_matches_scipy_and_handles_ties():
    a = [1, 2, 2, 3, 3, 3, 4]
    b = [3, 3, 4, 4, 5, 5, 6]
    result = ab.mann_whitney(a, b)
    reference = stats.mannwhitneyu(b, a, alternative="two-sided")
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.effect == pytest.approx(reference.statistic / 49)
    assert 0 <= result.ci_low <= result.effect <= result.ci_high <= 1


def test_bootstrap_is_seeded_and_brackets_the_effect():
    first = ab.bootstrap_difference(A, B, seed=3)
    again = ab.bootstrap_difference(A, B, seed=3)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert first.ci_low < first.effect < first.ci_high
    paired = ab.bootstrap_difference(A, A + 0.1, paired=True)
    assert paired.effect == pytest.approx(0.1) and paired.ci_low == pytest.approx(0.1)  # zero variance


def test_two_proportion_z_matches_statsmodels():
    a = np.r_[np.ones(45), np.zeros(55)]
    b = np.r_[np.ones(60), np.zeros(40)]
    result = ab.two_proportion_z(a, b)
    _, p = proportions_ztest([60, 45], [100, 100])
    assert result.p_value == pytest.approx(p) and result.effect == pytest.approx(0.15)


def test_fisher_lady_tasting_tea():
    # Fisher (1935), The Design of Experiments: 3 of 4 cups right; two-sided p = 0.4857.
    a = [1, 1, 1, 0]  # "milk first" cups called milk first
    b = [1, 0, 0, 0]
    result = ab.fisher(a, b)
    assert result.p_value == pytest.approx(0.4857, abs=1e-4)
    assert result.effect_kind == "odds_ratio"


def test_chi_square_matches_scipy():
    a = np.r_[np.ones(30), np.zeros(70)]
    b = np.r_[np.ones(45), np.zeros(55)]
    result = ab.chi_square(a, b)
    assert result.p_value == pytest.approx(stats.chi2_contingency([[30, 70], [45, 55]]).pvalue)


def test_mcnemar_agresti_presidential_approval():
    # Agresti (2002), Categorical Data Analysis, Table 10.1: 1,600 people rated the president twice.
    # approve/approve 794, approve/disapprove 150, disapprove/approve 86, disapprove/disapprove 570.
    first = np.r_[np.ones(794), np.ones(150), np.zeros(86), np.zeros(570)]
    second = np.r_[np.ones(794), np.zeros(150), np.ones(86), np.zeros(570)]
    result = ab.mcnemar(first, second)
    assert result.effect == pytest.approx((880 - 944) / 1600)  # -0.04
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (-0.0587, -0.0213), abs=1e-3
    )  # -0.04 +- 1.96 x 0.0095
    table = [[794, 150], [86, 570]]
    assert result.p_value == pytest.approx(sm_mcnemar(table, exact=False).pvalue)
    assert pytest.approx(17.36, abs=0.01) == (150 - 86) ** 2 / (150 + 86)  # Agresti's z^2


def test_ratio_delta_method_against_a_large_bootstrap():
    rng = np.random.default_rng(1)
    cost_a, ok_a = rng.lognormal(-5, 0.6, 3000), (rng.random(3000) < 0.95).astype(float)
    cost_b, ok_b = rng.lognormal(-4.9, 0.6, 3000), (rng.random(3000) < 0.93).astype(float)
    result = ab.ratio_difference(cost_a, ok_a, cost_b, ok_b)
    resampled = []
    for _ in range(2000):
        i, j = rng.integers(0, 3000, 3000), rng.integers(0, 3000, 3000)
        resampled.append(cost_b[j].sum() / ok_b[j].sum() - cost_a[i].sum() / ok_a[i].sum())
    assert result.effect == pytest.approx(cost_b.sum() / ok_b.sum() - cost_a.sum() / ok_a.sum())
    assert result.details["se"] == pytest.approx(np.std(resampled), rel=0.08)


def test_paired_ratio_uses_the_correlation():
    rng = np.random.default_rng(2)
    base = rng.lognormal(-5, 0.8, 2000)
    ones = np.ones(2000)
    independent = ab.ratio_difference(base, ones, base * 1.01, ones)
    paired = ab.ratio_difference(base, ones, base * 1.01, ones, paired=True)
    assert paired.details["se"] < independent.details["se"] / 5


def test_quantile_order_statistic_interval():
    values = np.arange(1, 101, dtype=float)
    # n = 100, median, 95%: binomial(100, 0.5) quantiles 40 and 60 -> the 40th and 61st values.
    assert ab.quantile_interval(values, 0.5, 0.95) == (40.0, 61.0)


def test_quantile_difference_small_and_large_samples():
    rng = np.random.default_rng(4)
    small = ab.quantile_difference(rng.lognormal(5, 0.5, 300), rng.lognormal(5.2, 0.5, 300), q=0.95, seed=1)
    assert "bootstrap" in small.method and small.ci_low < small.effect < small.ci_high
    large_a, large_b = rng.lognormal(5, 0.5, 20_000), rng.lognormal(5.1, 0.5, 20_000)
    large = ab.quantile_difference(large_a, large_b, q=0.95, log=True)
    assert "order-statistic" in large.method and large.effect_kind == "ratio"
    assert large.effect == pytest.approx(np.quantile(large_b, 0.95) / np.quantile(large_a, 0.95), rel=1e-6)
    assert large.ci_low < math.exp(0.1) < large.ci_high
    with pytest.raises(AnalysisError, match="positive"):
        ab.quantile_difference([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], log=True)


def test_holm_and_benjamini_hochberg_by_hand():
    results = [ab.welch(A, B) for _ in range(4)]
    results = [
        r.__class__(**{**r.__dict__, "p_value": p})
        for r, p in zip(results, [0.01, 0.04, 0.03, 0.005], strict=True)
    ]
    holm = [r.p_adjusted for r in ab.adjust(results, "holm")]
    bh = [r.p_adjusted for r in ab.adjust(results, "bh")]
    assert holm == pytest.approx([0.03, 0.06, 0.06, 0.02])  # 0.005x4, 0.01x3, 0.03x2, 0.04x1 (monotone)
    assert bh == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_power_and_sample_size_against_cohen():
    # Cohen (1988), Statistical Power Analysis: d = 0.5, alpha 0.05 two-sided, power 0.8 -> 64 per group.
    assert ab.sample_size(0.5, sd=1.0) == 64
    assert ab.sample_size(0.5, sd=1.0, design="paired") == 34  # one-sample t on differences: 33.4
    assert ab.power(64, 0.5, sd=1.0) == pytest.approx(0.80, abs=0.01)
    mde = ab.minimum_detectable_effect(64, sd=1.0)
    assert mde == pytest.approx(0.5, abs=0.01)
    n = ab.sample_size(0.10, metric="binary", baseline=0.20)
    assert (
        ab.power(n, 0.10, metric="binary", baseline=0.20)
        >= 0.8
        > ab.power(n - 5, 0.10, metric="binary", baseline=0.20)
    )
    pairs = ab.sample_size(0.05, metric="binary", design="paired", discordant=0.20)
    assert ab.power(pairs, 0.05, metric="binary", design="paired", discordant=0.20) == pytest.approx(
        0.8, abs=0.01
    )
    with pytest.raises(AnalysisError, match="standard deviation"):
        ab.sample_size(0.5)


def test_sample_ratio_mismatch():
    check = ab.sample_ratio_mismatch({"A": 50_000, "B": 51_000})
    assert check.chi2 == pytest.approx(2 * 500**2 / 50_500) and check.p_value == pytest.approx(
        0.00165, abs=5e-5
    )
    assert not check.mismatch  # 0.00165 > 0.001
    assert ab.sample_ratio_mismatch({"A": 50_000, "B": 52_000}).mismatch
    assert not ab.sample_ratio_mismatch({"A": 900, "B": 100}, {"A": 0.9, "B": 0.1}).mismatch


def test_sequential_test_controls_false_positives_under_many_looks():
    rng = np.random.default_rng(5)
    rejections = 0
    for _ in range(200):
        test = ab.SequentialTest(paired=True, alpha=0.05, tau=0.05)
        for _ in range(20):  # 20 looks of 25 pairs each, no true effect
            x = rng.normal(0, 1, 25)
            test.update(x, x + rng.normal(0, 0.3, 25))
        rejections += test.stopped
    assert rejections / 200 <= 0.05 + 0.03  # always-valid: no inflation from peeking


def test_sequential_test_detects_a_real_effect_and_matches_the_formula():
    rng = np.random.default_rng(6)
    test = ab.SequentialTest(paired=True, alpha=0.05, tau=0.1)
    for _ in range(40):
        x = rng.normal(0, 1, 25)
        look = test.update(x, x + 0.15 + rng.normal(0, 0.3, 25))
        if look.stop:
            break
    assert test.stopped and look.ci_low > 0
    differences = np.array(test.b) - np.array(test.a)
    v, tau2, theta = differences.var(ddof=1) / differences.size, 0.01, differences.mean()
    ratio = math.sqrt(v / (v + tau2)) * math.exp(tau2 * theta**2 / (2 * v * (v + tau2)))
    assert look.p_value <= min(1.0, 1 / ratio) + 1e-12  # p_n = min over looks of 1 / L
    assert look.p_value < 0.05


def test_bayesian_rates_and_means():
    result = ab.prob_b_beats_a_rates(120, 400, 141, 400)
    rng = np.random.default_rng(0)
    mc = (rng.beta(142, 260, 400_000) > rng.beta(121, 281, 400_000)).mean()
    assert result.prob_b_better == pytest.approx(mc, abs=0.003)
    assert result.expected_loss_b < result.expected_loss_a
    same = ab.prob_b_beats_a_rates(50, 100, 50, 100)
    assert same.prob_b_better == pytest.approx(0.5, abs=1e-6)
    means = ab.prob_b_beats_a_means(A, B)
    se = math.sqrt(A.var(ddof=1) / A.size + B.var(ddof=1) / B.size)
    assert means.prob_b_better == pytest.approx(stats.norm.cdf((B.mean() - A.mean()) / se))


def test_length_controlled_win_rate_removes_a_pure_length_bias():
    rng = np.random.default_rng(7)
    delta = rng.normal(0, 400, 4000)
    p_win = 1 / (1 + np.exp(-(0.0 + 1.5 * np.tanh(delta / delta.std()))))  # wins only through length
    wins = (rng.random(4000) < p_win).astype(float)
    lengths, reference = 1000 + delta, np.full(4000, 1000.0)
    lc = length_controlled_win_rate(wins, lengths, reference)
    assert lc.percent == pytest.approx(50, abs=3) and lc.length_coefficient > 1.0
    keep = (delta > 0) | (rng.random(4000) < 0.3)  # mostly longer answers: the raw win rate rises
    biased = length_controlled_win_rate(wins[keep], lengths[keep], reference[keep])
    assert biased.raw.percent > 55 and biased.percent == pytest.approx(50, abs=4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ab.welch([1.0], [2.0, 3.0]), "at least 2"),
        (lambda: ab.paired_t([1.0, 2.0], [1.0]), "equally long"),
        (lambda: ab.welch([1, np.nan, 3], [2, 3, 4], nan_policy="raise"), "missing"),
        (lambda: ab.two_proportion_z([0, 1, 2], [0, 1]), "only 0 and 1"),
        (lambda: ab.ratio_difference([1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [1.0, 1.0]), "denominator"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(AnalysisError, match=message):
        call()


def test_edge_cases_give_exact_answers_not_nan():
    constant = ab.welch([1.0, 1.0, 1.0], [1.0, 1.0])
    assert (constant.p_value, constant.ci_low, constant.ci_high) == (1.0, 0.0, 0.0)
    shifted = ab.welch([1.0, 1.0], [2.0, 2.0])
    assert shifted.p_value == 0.0 and shifted.effect == 1.0
    all_success = ab.two_proportion_z([1, 1, 1], [1, 1, 1, 1])
    assert all_success.p_value == 1.0 and all_success.effect == 0.0
    nothing_changed = ab.wilcoxon([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert nothing_changed.p_value == 1.0
    dropped = ab.welch([1.0, np.nan, 3.0, 2.0], [2.0, 3.0, 4.0])
    assert dropped.n_a == 3 and dropped.details["dropped_a"] == 1  # documented drop, counted


def paired_frame(n: int = 400, lift: float = 0.05, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    prompts = [f"p{i}" for i in range(n)]
    base = rng.random(n)
    frames = []
    for arm, shift in (("control", 0.0), ("treatment", lift)):
        quality = (rng.random(n) < np.clip(base * 0.5 + shift, 0, 1)).astype(float)
        frames.append(
            pl.DataFrame(
                {
                    "run_name": arm,
                    "prompt": prompts,
                    "quality": quality,
                    "status": np.where(rng.random(n) < 0.98, "ok", "error"),
                    "cost_usd": rng.lognormal(-6, 0.4, n),
                    "latency_ms": rng.lognormal(6.5, 0.5, n),
                }
            )
        )
    return pl.concat(frames)


def test_report_infers_the_paired_design_and_adjusts():
    frame = paired_frame()
    report = ab.ab_report(frame, control="control")
    assert "paired by 'prompt'" in report.notes[0]
    methods = {r.metric: r.method for r in report}
    assert methods == {
        "quality": "paired t-test",
        "success": "McNemar's test",
        "cost_per_success": "delta method (paired)",
        "p95_latency_ms": "paired bootstrap of the p95 difference",
    }
    assert all(r.adjustment == "holm" for r in report if r.p_value is not None)
    assert "<table>" in report._repr_html_() and report.table.height == 4


def test_report_falls_back_to_independent_samples_and_checks_the_split():
    frame = paired_frame().with_columns(
        pl.when(pl.col("run_name") == "treatment")
        .then(pl.col("prompt") + "-other")
        .otherwise(pl.col("prompt"))
        .alias("prompt")
    )
    report = ab.ab_report(frame, control="control")
    assert "independent" in report.notes[0] and "sample ratio" in report.notes[1]
    assert {r.method for r in report} >= {"Welch's t-test", "two-proportion z-test", "delta method"}


def test_report_accepts_pandas_and_never_mutates_its_input():
    frame = paired_frame().to_pandas()
    before = frame.copy()
    ab.ab_report(frame, control="control")
    assert frame.equals(before)


def test_report_logs_to_mlflow(tracking, client):
    from orchestra.tracking.store import MlflowStore

    store = MlflowStore(tracking)
    run_ids = [store.create_run(name, run_key=name, params={}, tags={}) for name in ("control", "treatment")]
    report = ab.ab_report(paired_frame(), control="control")
    report.log_to_mlflow(tracking, run_ids)
    run = client.get_run(run_ids[1])
    assert any(key.startswith("ab.quality.treatment_vs_control") for key in run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run_ids[1], "analysis")}
    assert artifacts == {"analysis/ab_report.json", "analysis/ab_report.html"}
