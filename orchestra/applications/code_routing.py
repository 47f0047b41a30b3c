"""What routing by task could gain for code: the recorded HumanEval pass matrix, per-task oracle vs
the best single model vs a learned router, on held-out tasks, with confidence intervals.

matrix = load_pass_matrix()
evaluation = evaluate_code_routing(matrix, load_problems(), label="passed_base", seed=0)
evaluation.table          # policy, passed, tasks, pass_rate, ci_low, ci_high, minus_best_single (+ CI)

The tasks are split in two halves at random (seeded). On the training half: the best single model
(highest pass rate; ties to the name first in alphabetical order) and the learned router: one
scikit-learn logistic regression per model predicting "passes" from TF-IDF features of the task's
prompt, routing each task to the model most likely to pass (ties to the best single model). On the
test half: each policy's pass rate with an exact (Clopper-Pearson, statsmodels) 95% interval, and
its difference from the best single model with a paired bootstrap 95% interval (scipy) over test
tasks. The oracle picks a passing model whenever there is one (the ceiling of any router).
`repeated_splits` repeats the split to show how much the answer depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import bootstrap
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.proportion import proportion_confint

from orchestra.errors import AnalysisError

PASS_MATRIX = (
    Path(__file__).resolve().parents[2] / "data" / "humaneval" / "pass_matrix_zero_shot_replication.csv"
)
LABELS = ("passed_base", "passed_plus")


def load_pass_matrix(path: str | Path = PASS_MATRIX) -> pd.DataFrame:
    """The recorded pass matrix: one row per (task, model)."""
    return pd.read_csv(path)


def pass_table(matrix: pd.DataFrame, label: str = "passed_base") -> pd.DataFrame:
    """Tasks x models, True where the model's completion passed (a new frame)."""
    if label not in LABELS:
        raise AnalysisError(f"label must be one of {', '.join(LABELS)} (got {label!r})")
    missing = {"task_id", "model", label} - set(matrix.columns)
    if missing:
        raise AnalysisError(f"the pass matrix lacks columns {sorted(missing)}")
    table = matrix.pivot_table(index="task_id", columns="model", values=label, aggfunc="first")
    if table.isna().any().any():
        raise AnalysisError("the pass matrix is not complete: some (task, model) pairs are missing")
    return table.astype(bool).sort_index(axis=1)


@dataclass(frozen=True)
class RoutingEvaluation:
    """Held-out pass rates of each policy, the split, and the learned router's choices."""

    table: pd.DataFrame
    train_tasks: list[str]
    test_tasks: list[str]
    best_single: str
    learned_choices: pd.Series

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, float_format="%.3f")


def learned_choices(
    passes: pd.DataFrame, prompts: pd.Series, train: Sequence[str], test: Sequence[str], fallback: str
) -> pd.Series:
    """For each test task, the model a per-model logistic regression on TF-IDF prompt features
    thinks most likely to pass (ties, and models that always or never passed in training, fall
    back on their training pass rate; remaining ties go to `fallback`)."""
    vectorizer = TfidfVectorizer(sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    x_train = vectorizer.fit_transform(prompts.loc[list(train)])
    x_test = vectorizer.transform(prompts.loc[list(test)])
    scores = pd.DataFrame(index=list(test), columns=passes.columns, dtype=float)
    for model in passes.columns:
        y = passes.loc[list(train), model].to_numpy()
        if y.all() or not y.any():
            scores[model] = float(y.mean())
            continue
        classifier = LogisticRegression(C=1.0, max_iter=1000).fit(x_train, y)
        scores[model] = classifier.predict_proba(x_test)[:, 1]
    order = [fallback, *[m for m in passes.columns if m != fallback]]
    return scores[order].round(9).idxmax(axis=1)


def evaluate_code_routing(
    matrix: pd.DataFrame,
    problems: Sequence[dict],
    *,
    label: str = "passed_base",
    seed: int = 0,
    n_resamples: int = 10_000,
) -> RoutingEvaluation:
    """Oracle, best single model and learned router on a held-out half of the tasks."""
    passes = pass_table(matrix, label)
    prompts = pd.Series({p["task_id"]: p["prompt"] for p in problems})
    missing = sorted(set(passes.index) - set(prompts.index))
    if missing:
        raise AnalysisError(f"no prompt for {len(missing)} task(s) of the pass matrix, e.g. {missing[0]}")
    rng = np.random.default_rng(seed)
    tasks = list(passes.index)
    shuffled = [tasks[i] for i in rng.permutation(len(tasks))]
    half = len(tasks) // 2
    train, test = sorted(shuffled[:half]), sorted(shuffled[half:])
    train_rates = passes.loc[train].mean()
    best = sorted(train_rates.index, key=lambda m: (-train_rates[m], m))[0]
    choices = learned_choices(passes, prompts, train, test, best)
    outcomes = {
        "oracle (any model passes)": passes.loc[test].any(axis=1).to_numpy(),
        f"best single model ({best})": passes.loc[test, best].to_numpy(),
        "learned router": np.array([passes.loc[task, choices[task]] for task in test]),
        "random model (expected)": passes.loc[test].mean(axis=1).to_numpy(),
    }
    baseline = outcomes[f"best single model ({best})"].astype(float)
    rows = []
    for policy, passed in outcomes.items():
        values = passed.astype(float)
        successes = float(values.sum())
        low, high = proportion_confint(round(successes), len(values), alpha=0.05, method="beta")
        difference = values - baseline
        if np.ptp(difference) == 0:
            diff_low = diff_high = float(difference.mean())
        else:
            interval = bootstrap(
                (difference,), np.mean, n_resamples=n_resamples, method="percentile", random_state=seed
            ).confidence_interval
            diff_low, diff_high = float(interval.low), float(interval.high)
        rows.append(
            {
                "policy": policy,
                "passed": successes,
                "tasks": len(values),
                "pass_rate": successes / len(values),
                "ci_low": low,
                "ci_high": high,
                "minus_best_single": float(difference.mean()),
                "diff_ci_low": diff_low,
                "diff_ci_high": diff_high,
            }
        )
    return RoutingEvaluation(pd.DataFrame(rows), train, test, best, choices)


def repeated_splits(
    matrix: pd.DataFrame, problems: Sequence[dict], *, label: str = "passed_base", repeats: int = 100
) -> pd.DataFrame:
    """Held-out pass rates of best single, learned router and oracle over `repeats` seeded splits."""
    rows = []
    for seed in range(repeats):
        evaluation = evaluate_code_routing(matrix, problems, label=label, seed=seed, n_resamples=200)
        rates = dict(zip(evaluation.table["policy"], evaluation.table["pass_rate"], strict=True))
        rows.append(
            {
                "seed": seed,
                "oracle": rates["oracle (any model passes)"],
                "best_single": rates[f"best single model ({evaluation.best_single})"],
                "learned": rates["learned router"],
            }
        )
    frame = pd.DataFrame(rows)
    frame["learned_minus_best_single"] = frame["learned"] - frame["best_single"]
    return frame
