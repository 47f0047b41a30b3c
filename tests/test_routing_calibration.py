"""Calibrated probabilities (isotonic and Platt), the learned router's calibrated quality
estimates, budget- and quality-targeted trade-offs, and the run-time spend monitor."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest
from sklearn.isotonic import IsotonicRegression

from orchestra.errors import AnalysisError
from orchestra.routing.budget import SpendMonitor, Target, calibrate_cost_weight, pick_setting
from orchestra.routing.calibration import ProbabilityCalibrator, reliability
from orchestra.routing.learned import KNNRoutingPolicy


def noisy_scores(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true probability of a good answer is score**2 (overconfident raw scores)."""
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    return scores, (rng.random(n) < scores**2).astype(float)


def test_isotonic_calibrator_matches_scikit_learn_and_survives_json():
    scores, labels = noisy_scores()
    calibrator = ProbabilityCalibrator.fit(scores, labels, "isotonic")
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, labels)
    probe = np.linspace(-0.5, 1.5, 41)
    np.testing.assert_allclose(calibrator.predict(probe), reference.predict(probe))
    again = ProbabilityCalibrator.from_dict(calibrator.to_dict())
    np.testing.assert_allclose(again.predict(probe), calibrator.predict(probe))
    assert np.isnan(calibrator.predict([np.nan])[0])


def test_calibration_lowers_ece_and_brier_on_held_out_scores():
    scores, labels = noisy_scores(seed=1)
    test_scores, test_labels = noisy_scores(seed=2)
    raw = reliability(test_scores, test_labels)
    for method in ("isotonic", "platt"):
        calibrated = ProbabilityCalibrator.fit(scores, labels, method).predict(test_scores)
        report = reliability(calibrated, test_labels, base_rate=labels.mean())
        assert report.ece < raw.ece / 2 and report.brier < raw.brier
        assert report.skill > 0  # beats the constant guess
    assert "ECE" in str(raw)


def test_platt_keeps_the_order_or_falls_back_to_the_base_rate():
    scores, labels = noisy_scores()
    increasing = ProbabilityCalibrator.fit(scores, labels, "platt")
    assert increasing.slope > 0 and np.all(np.diff(increasing.predict(np.linspace(0, 1, 11))) > 0)
    inverted = ProbabilityCalibrator.fit(scores, 1 - labels, "platt")  # a score against the label
    assert inverted.slope == 0 and inverted.predict([0.1, 0.9]) == pytest.approx([1 - labels.mean()] * 2)
    fractional = ProbabilityCalibrator.fit([0.1, 0.5, 0.9, 0.2], [0.0, 0.5, 1.0, 0.5], "platt")
    assert 0 < fractional.predict([0.5])[0] < 1
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        ProbabilityCalibrator.fit([0.1, 0.2], [0.0, 2.0])


def recorded_gsm8k() -> pl.DataFrame:
    from .conftest import ROOT

    frame = pl.read_parquet(ROOT / "data" / "gsm8k_routellm" / "responses.parquet")
    return frame.select(
        "prompt",
        pl.col("model").alias("provider"),
        pl.col("correct").alias("quality"),
        (pl.col("output_chars") * 1e-6).alias("cost_usd"),
    )


def test_learned_router_quality_is_calibrated_out_of_fold(tmp_path):
    table = recorded_gsm8k()
    prompts = table["prompt"].unique(maintain_order=True).to_list()
    train, test = prompts[:400], prompts[400:]
    policy = KNNRoutingPolicy.fit(table.filter(pl.col("prompt").is_in(train)), calibration="isotonic")
    assert set(policy.calibrators) == set(policy.providers)
    truth = table.filter(pl.col("prompt").is_in(test)).pivot(on="provider", index="prompt", values="quality")
    truth = truth.sort(pl.col("prompt").replace_strict({p: i for i, p in enumerate(test)}))
    calibrated, _ = policy.estimates(test)
    raw, _ = policy.estimates(test, calibrated=False)
    for j, provider in enumerate(policy.providers):
        labels = truth[provider].to_numpy()
        held_out = reliability(calibrated[:, j], labels, base_rate=float(np.mean(labels)))
        assert held_out.ece < 0.1  # calibrated on prompts it did not see
    loaded = KNNRoutingPolicy.load(policy.save(tmp_path / "policy"))
    np.testing.assert_allclose(loaded.estimates(test)[0], calibrated)
    assert not np.allclose(raw, calibrated)
    assert policy.trained_on(prompts) == train
    policy.assert_unseen(test)
    with pytest.raises(AnalysisError, match="trained on 400 of the 659 evaluation prompts"):
        policy.assert_unseen(prompts)


def test_a_budget_is_spent_and_a_quality_target_is_met_at_least_cost():
    rng = np.random.default_rng(0)
    n = 400
    quality = np.column_stack([rng.random(n) < 0.6, rng.random(n) < 0.85]).astype(float)
    cost = np.column_stack([np.full(n, 0.0001), np.full(n, 0.004)])
    estimated = quality * 0.3 + 0.35 + rng.normal(0, 0.05, (n, 2))  # informative, noisy estimates
    pick = calibrate_cost_weight(estimated, cost, quality, cost, Target(budget_per_1k=1.0))
    assert pick.met and 0.8 <= pick.spend_per_1k <= 1.0  # spends (most of) the budget
    within = pick.curve.filter(pl.col("spend_per_1k") <= 1.0)
    assert pick.spend_per_1k == within["spend_per_1k"].max()
    target = calibrate_cost_weight(estimated, cost, quality, cost, Target(quality_target=0.8))
    assert target.met and target.quality >= 0.8
    reaching = target.curve.filter(pl.col("quality") >= 0.8)
    assert target.spend_per_1k == reaching["spend_per_1k"].min()
    impossible = calibrate_cost_weight(estimated, cost, quality, cost, Target(budget_per_1k=0.01))
    assert not impossible.met and impossible.spend_per_1k == pytest.approx(0.1)  # the cheapest setting
    assert "NOT met" in str(impossible)
    with pytest.raises(ValueError, match="not both"):
        Target(budget_per_1k=1.0, quality_target=0.5)
    flat = pl.DataFrame({"value": [0.0, 1.0], "spend_per_1k": [4.0, 0.5], "quality": [0.9, 0.95]})
    assert pick_setting(flat, Target()).value == 1.0  # no target: the best quality


def test_spend_monitor_warns_once_per_excursion(caplog):
    monitor = SpendMonitor(1.0, tolerance=0.2, window=100, min_requests=50)
    events = []
    with caplog.at_level(logging.WARNING, logger="orchestra.routing"):
        for cost in [0.001] * 100 + [0.0015] * 100 + [0.001] * 100:
            event = monitor.observe(cost)
            if event is not None:
                events.append((monitor.requests, event.drifting, event.drift))
    assert [e[1] for e in events] == [True, False]  # left the band once, came back once
    assert events[0][2] > 0.2 and events[1][2] <= 0.2
    assert len([r for r in caplog.records if "spend drifts" in r.getMessage()]) == 1
