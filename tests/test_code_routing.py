"""The code-routing evaluation on the recorded HumanEval pass matrix (pure functions over frames)."""

from __future__ import annotations

import pytest

from orchestra.applications.code_routing import evaluate_code_routing, load_pass_matrix, pass_table
from orchestra.errors import AnalysisError
from orchestra.scoring import load_problems

MATRIX = load_pass_matrix()
PROBLEMS = load_problems()


def test_the_pass_table_matches_the_recorded_pass_rates():
    table = pass_table(MATRIX, "passed_base")
    assert table.shape == (82, 7)
    assert table.mean()["gpt-4-0314"] == pytest.approx(0.890, abs=0.001)  # data/humaneval/README.md
    assert pass_table(MATRIX, "passed_plus").mean()["claude-2"] == pytest.approx(0.549, abs=0.001)


def test_evaluation_is_seeded_disjoint_and_ordered_by_construction():
    first = evaluate_code_routing(MATRIX, PROBLEMS, seed=3, n_resamples=500)
    again = evaluate_code_routing(MATRIX, PROBLEMS, seed=3, n_resamples=500)
    assert first.table.equals(again.table)
    assert not set(first.train_tasks) & set(first.test_tasks) and len(first.test_tasks) == 41
    rates = dict(zip(first.table["policy"], first.table["pass_rate"], strict=True))
    assert rates["oracle (any model passes)"] >= max(rates.values()) - 1e-12
    for row in first.table.itertuples():
        assert row.ci_low <= row.pass_rate <= row.ci_high
        assert row.diff_ci_low <= row.minus_best_single <= row.diff_ci_high
    assert set(first.learned_choices.index) == set(first.test_tasks)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(AnalysisError, match="label"):
        pass_table(MATRIX, "passed")
    with pytest.raises(AnalysisError, match="no prompt"):
        evaluate_code_routing(MATRIX, PROBLEMS[:10])
    with pytest.raises(AnalysisError, match="not complete"):
        pass_table(MATRIX.iloc[1:], "passed_base")
