"""Cascades (FrugalGPT-style): ask the cheapest suitable provider first; keep its answer when the
calibrated probability that it is good clears a threshold, else escalate to the next one.

    policy, pick = fit_cascade(outcomes, ["mixtral-8x7b", "gpt-4-turbo"], fit_prompts=...,
                               select_prompts=..., target=Target(budget_per_1k=0.4))
    verdict = policy.judge("mixtral-8x7b", prompt, answer, previous=[])
    verdict.accept, verdict.probability, verdict.reason
    policy.save("models/cascade"); CascadePolicy.load("models/cascade")

For every stage but the last, an acceptance model maps the answer's signals
(`orchestra.routing.signals`: the prompt's predicted quality, the answer's length and shape,
agreement with earlier answers, logprobs) to a probability: a scikit-learn logistic regression
on standardised signals, then a Platt (or isotonic) calibrator fitted on out-of-fold scores.
The last stage's answer is always kept; an empty answer at an earlier stage always escalates
(it is a failed call, whatever its probability).

Thresholds are learned on the select split (prompts the models were not fitted on) for a budget
or a quality target (`orchestra.routing.budget.pick_setting`). One threshold is shared by all
stages but the last: FrugalGPT searches one per stage, which on a few hundred prompts mostly
fits noise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from orchestra.errors import ConfigError
from orchestra.routing.budget import Target, TradeOffPick, pick_setting
from orchestra.routing.calibration import Method, ProbabilityCalibrator, fit_soft_logistic, sigmoid
from orchestra.routing.learned import KNNRoutingPolicy, prompt_digest
from orchestra.routing.outcomes import Outcomes
from orchestra.routing.signals import SIGNALS, answer_signals

if TYPE_CHECKING:
    import polars as pl

MAX_STAGES = 3
ALWAYS_ESCALATE = 1.0 + 1e-9
"""The threshold no probability reaches: every prompt goes to the last stage."""


@dataclass(frozen=True)
class Verdict:
    """Whether one stage's answer is kept, with its probability and the reason."""

    provider: str
    probability: float
    threshold: float
    accept: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "probability": round(self.probability, 6),
            "threshold": round(self.threshold, 6),
            "accepted": self.accept,
            "reason": self.reason,
        }


@dataclass
class AcceptanceModel:
    """P(good answer | signals) for one provider: logistic regression, then calibrated."""

    provider: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibrator: ProbabilityCalibrator | None
    mean_chars: float
    prior_quality: float
    n: int = 0

    @classmethod
    def fit(
        cls,
        provider: str,
        signals: np.ndarray,
        labels: np.ndarray,
        *,
        mean_chars: float,
        prior_quality: float,
        folds: np.ndarray,
        method: Method = "platt",
    ) -> AcceptanceModel:
        """Fit on (signals, label in [0, 1]) rows; `folds` assigns rows to the out-of-fold
        predictions the calibrator is fitted on."""
        known = ~np.isnan(labels)
        x, y, fold = signals[known], labels[known], folds[known]
        if x.shape[0] < 10:
            raise ConfigError(f"cascade stage {provider!r}: {x.shape[0]} labelled answers; need at least 10")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        coef, intercept = fit_soft_logistic((x - mean) / scale, y)
        raw = np.full(y.shape, np.nan)
        for f in np.unique(fold):
            held, train = fold == f, fold != f
            if train.sum() < 5 or np.ptp(y[train]) == 0:
                continue
            part_mean, part_scale = x[train].mean(axis=0), x[train].std(axis=0)
            part_scale = np.where(part_scale > 1e-12, part_scale, 1.0)
            c, b = fit_soft_logistic((x[train] - part_mean) / part_scale, y[train])
            raw[held] = sigmoid(((x[held] - part_mean) / part_scale) @ c + b)
        usable = ~np.isnan(raw)
        calibrator = (
            ProbabilityCalibrator.fit(raw[usable], y[usable], method)
            if usable.sum() >= 10 and np.ptp(y[usable]) > 0
            else None
        )
        return cls(provider, mean, scale, coef, intercept, calibrator, mean_chars, prior_quality, int(y.size))

    def raw(self, signals: np.ndarray) -> np.ndarray:
        return sigmoid(((np.atleast_2d(signals) - self.mean) / self.scale) @ self.coef + self.intercept)

    def probability(self, signals: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, one per row of `signals`."""
        raw = self.raw(signals)
        return self.calibrator.predict(raw) if self.calibrator is not None else raw

    def weakest_signal(self, signals: np.ndarray) -> str:
        """The signal that pulls this answer's probability down the most."""
        contribution = ((signals - self.mean) / self.scale) * self.coef
        return SIGNALS[int(np.argmin(contribution))]

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "calibrator": self.calibrator.to_dict() if self.calibrator else None,
            "mean_chars": self.mean_chars,
            "prior_quality": self.prior_quality,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcceptanceModel:
        return cls(
            data["provider"],
            np.array(data["mean"]),
            np.array(data["scale"]),
            np.array(data["coef"]),
            float(data["intercept"]),
            ProbabilityCalibrator.from_dict(data["calibrator"]) if data.get("calibrator") else None,
            float(data["mean_chars"]),
            float(data["prior_quality"]),
            int(data.get("n", 0)),
        )


@dataclass
class CascadePolicy:
    """Stages in calling order, an acceptance model and threshold for each but the last, and
    optionally the learned router's quality model for the `prior` signal."""

    stages: list[str]
    models: dict[str, AcceptanceModel]
    threshold: float
    quality_model: KNNRoutingPolicy | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.stages) < 2:
            raise ConfigError(f"a cascade needs at least two stages (got {self.stages})")
        missing = [s for s in self.stages[:-1] if s not in self.models]
        if missing:
            raise ConfigError(f"cascade stages {missing} have no acceptance model")

    def priors(self, prompts: list[str], provider: str) -> np.ndarray:
        """The predicted probability of a good answer before seeing it."""
        model = self.quality_model
        if model is not None and provider in model.providers:
            quality, _ = model.estimates(prompts)
            return quality[:, model.providers.index(provider)]
        return np.full(len(prompts), self.models[provider].prior_quality)

    def signals(
        self,
        provider: str,
        answer: str | None,
        prior: float,
        previous: list[str],
        logprob: float | None = None,
    ) -> np.ndarray:
        model = self.models[provider]
        return answer_signals(
            answer or "", prior=prior, mean_chars=model.mean_chars, previous=previous, logprob=logprob
        )

    def judge(
        self,
        provider: str,
        prompt: str,
        answer: str,
        previous: list[str] | None = None,
        logprob: float | None = None,
        *,
        prior: float | None = None,
    ) -> Verdict:
        """Keep `answer` (of stage `provider`) or escalate? The last stage is always kept."""
        if provider == self.stages[-1]:
            return Verdict(provider, float("nan"), self.threshold, True, "last stage: always kept")
        if provider not in self.models:
            raise ConfigError(f"{provider!r} is not a stage of this cascade ({self.stages})")
        if not answer.strip():  # an empty answer is a failed call, whatever the threshold
            return Verdict(provider, 0.0, self.threshold, False, "empty answer")
        if prior is None:
            prior = float(self.priors([prompt], provider)[0])
        signals = self.signals(provider, answer, prior, list(previous or []), logprob)
        probability = float(self.models[provider].probability(signals)[0])
        if probability >= self.threshold:
            reason = f"P(good)={probability:.3f} >= {self.threshold:.3f}: kept"
            return Verdict(provider, probability, self.threshold, True, reason)
        weakest = self.models[provider].weakest_signal(signals)
        reason = f"P(good)={probability:.3f} < {self.threshold:.3f} (weakest signal: {weakest})"
        return Verdict(provider, probability, self.threshold, False, reason)

    def stage_probabilities(
        self, outcomes: Outcomes, priors: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """(prompts, stages - 1): each non-final stage's acceptance probability on recorded answers,
        as if every earlier stage had been asked (as it is when the stage is reached)."""
        probabilities = np.full((len(outcomes), len(self.stages) - 1), np.nan)
        columns = [outcomes.column(s) for s in self.stages]
        for s, provider in enumerate(self.stages[:-1]):
            prior = priors[provider] if priors is not None else self.priors(outcomes.prompts, provider)
            rows = []
            for i in range(len(outcomes)):
                answer = outcomes.outputs[i][columns[s]]
                previous = [outcomes.outputs[i][c] or "" for c in columns[:s]]
                rows.append(self.signals(provider, answer, float(prior[i]), previous))
            probabilities[:, s] = self.models[provider].probability(np.array(rows))
            missing = np.array(
                [not (outcomes.outputs[i][columns[s]] or "").strip() for i in range(len(outcomes))]
            )
            probabilities[missing, s] = -np.inf  # no (or an empty) answer: a failed call, escalate
        return probabilities

    def simulate(
        self, outcomes: Outcomes, probabilities: np.ndarray | None = None, threshold: float | None = None
    ) -> CascadeRun:
        """Quality, cost and stages called per prompt, replayed on full-information outcomes."""
        if probabilities is None:
            probabilities = self.stage_probabilities(outcomes)
        return run_stages(
            outcomes, self.stages, probabilities, self.threshold if threshold is None else threshold
        )

    def with_threshold(self, threshold: float) -> CascadePolicy:
        return CascadePolicy(self.stages, self.models, threshold, self.quality_model, dict(self.metadata))

    def save(self, folder: str | Path) -> Path:
        """`cascade.json` (stages, threshold, acceptance models) and the quality model in `prior/`."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        settings = {
            "kind": "cascade",
            "stages": self.stages,
            "threshold": self.threshold,
            "signals": list(SIGNALS),
            "models": {p: m.to_dict() for p, m in self.models.items()},
            "metadata": self.metadata,
            "quality_model": "prior" if self.quality_model is not None else None,
        }
        (target / "cascade.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        if self.quality_model is not None:
            self.quality_model.save(target / "prior")
        return target

    @classmethod
    def load(cls, folder: str | Path) -> CascadePolicy:
        source = Path(folder)
        try:
            settings = json.loads((source / "cascade.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read the cascade policy in {source}: {err}") from err
        if settings.get("signals") != list(SIGNALS):
            raise ConfigError(f"the cascade policy in {source} was fitted on other signals: refit it")
        quality_model = (
            KNNRoutingPolicy.load(source / settings["quality_model"])
            if settings.get("quality_model")
            else None
        )
        return cls(
            settings["stages"],
            {p: AcceptanceModel.from_dict(m) for p, m in settings["models"].items()},
            float(settings["threshold"]),
            quality_model,
            settings.get("metadata", {}),
        )

    def __repr__(self) -> str:
        return f"CascadePolicy({' -> '.join(self.stages)}, threshold={self.threshold:.3f})"


@dataclass(frozen=True)
class CascadeRun:
    """A cascade replayed on recorded outcomes: per prompt, the kept answer's quality, the cost of
    every call made, and the index of the stage whose answer was kept."""

    quality: np.ndarray
    cost: np.ndarray
    kept_stage: np.ndarray

    def escalation_share(self) -> float:
        return float((self.kept_stage > 0).mean())


def run_stages(
    outcomes: Outcomes, stages: list[str], probabilities: np.ndarray, threshold: float
) -> CascadeRun:
    """Walk the stages for every prompt: keep the first answer whose probability reaches
    `threshold` (the last stage's always)."""
    columns = [outcomes.column(s) for s in stages]
    n = len(outcomes)
    accept = np.concatenate([probabilities >= threshold, np.ones((n, 1), dtype=bool)], axis=1)
    kept = accept.argmax(axis=1)  # the first stage that accepts
    rows = np.arange(n)
    stage_cost = np.nan_to_num(outcomes.cost[:, columns])
    called = np.arange(len(stages))[None, :] <= kept[:, None]
    quality = outcomes.quality[:, columns][rows, kept]
    return CascadeRun(quality, (stage_cost * called).sum(axis=1), kept)


def frontier_stages(outcomes: Outcomes, max_stages: int = MAX_STAGES) -> list[str]:
    """Providers by mean cost, keeping each one better on average than every cheaper one kept
    (the cost-quality frontier); at most `max_stages`: the cheapest and the best ones."""
    cost = np.nanmean(outcomes.cost, axis=0)
    quality = np.nanmean(outcomes.quality, axis=0)
    order = sorted(range(len(outcomes.providers)), key=lambda j: (cost[j], -quality[j]))
    frontier: list[int] = []
    for j in order:
        if not frontier or quality[j] > max(quality[f] for f in frontier):
            frontier.append(j)
    if len(frontier) > max_stages:
        frontier = [frontier[0], *frontier[len(frontier) - max_stages + 1 :]]
    return [outcomes.providers[j] for j in frontier]


def fit_cascade(
    outcomes: Outcomes,
    stages: Sequence[str],
    *,
    fit_prompts: list[str],
    select_prompts: list[str],
    target: Target,
    quality_model: KNNRoutingPolicy | None = None,
    method: Method = "platt",
    folds: int = 5,
) -> tuple[CascadePolicy, TradeOffPick]:
    """Acceptance models on `fit_prompts`, the threshold for `target` on `select_prompts`.

    With a `quality_model` (fitted on the fit prompts only) its calibrated estimate is the prior
    signal: out of fold on the fit prompts, directly on the select prompts."""
    stages = list(stages)
    fit = outcomes.subset(fit_prompts)
    fold_of = np.array([int(prompt_digest(p), 16) % folds for p in fit.prompts])
    priors_fit = _fit_priors(fit, stages, quality_model, folds)
    models: dict[str, AcceptanceModel] = {}
    for s, provider in enumerate(stages[:-1]):
        j = fit.column(provider)
        earlier = [fit.column(p) for p in stages[:s]]
        answered = [i for i in range(len(fit)) if fit.outputs[i][j] is not None]
        mean_chars = (
            float(np.mean([len((fit.outputs[i][j] or "").strip()) for i in answered])) if answered else 1.0
        )
        prior_quality = float(np.nanmean(fit.quality[:, j]))
        signals = np.array(
            [
                answer_signals(
                    fit.outputs[i][j] or "",
                    prior=float(priors_fit[provider][i]),
                    mean_chars=mean_chars,
                    previous=[fit.outputs[i][c] or "" for c in earlier],
                )
                for i in answered
            ]
        )
        models[provider] = AcceptanceModel.fit(
            provider,
            signals,
            fit.quality[answered, j],
            mean_chars=mean_chars,
            prior_quality=prior_quality,
            folds=fold_of[answered],
            method=method,
        )
    policy = CascadePolicy(
        stages,
        models,
        threshold=0.5,
        quality_model=quality_model,
        metadata={
            "fit_prompts": len(fit_prompts),
            "select_prompts": len(select_prompts),
            "prompt_digests": sorted({prompt_digest(p) for p in [*fit_prompts, *select_prompts]}),
            "calibration": method,
            "target": str(target),
        },
    )
    select = outcomes.subset(select_prompts)
    probabilities = policy.stage_probabilities(select)
    pick = pick_setting(threshold_curve(select, stages, probabilities), target)
    policy.threshold = pick.value
    policy.metadata["select_spend_per_1k"] = pick.spend_per_1k
    policy.metadata["select_quality"] = pick.quality
    return policy, pick


def threshold_curve(outcomes: Outcomes, stages: list[str], probabilities: np.ndarray) -> pl.DataFrame:
    """Spend per 1k and quality for every distinct threshold (from "keep every first answer" to
    "always escalate")."""
    import polars as pl

    finite = probabilities[np.isfinite(probabilities)]
    candidates = np.unique(np.concatenate([[0.0, ALWAYS_ESCALATE], finite]))
    if candidates.size > 400:
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, 400)))
    rows = []
    for threshold in candidates:
        run = run_stages(outcomes, stages, probabilities, float(threshold))
        rows.append((float(threshold), float(run.cost.mean()) * 1000.0, float(np.nanmean(run.quality))))
    return pl.DataFrame(rows, schema=["value", "spend_per_1k", "quality"], orient="row")


def _fit_priors(
    fit: Outcomes, stages: list[str], quality_model: KNNRoutingPolicy | None, folds: int
) -> dict[str, np.ndarray]:
    """Prior signal on the fit prompts: the quality model's out-of-fold estimate (calibrated)."""
    priors: dict[str, np.ndarray] = {}
    oof = None
    if quality_model is not None:
        trained = set(quality_model.metadata.get("prompt_digests", []))
        if all(prompt_digest(p) in trained for p in fit.prompts) and len(trained) == len(fit.prompts):
            oof = quality_model.calibrate(quality_model.out_of_fold_quality(folds))
            order = {d: i for i, d in enumerate(quality_model.metadata["prompt_digests"])}
            oof = oof[[order[prompt_digest(p)] for p in fit.prompts]]
    for provider in stages[:-1]:
        j = fit.column(provider)
        if oof is not None and quality_model is not None and provider in quality_model.providers:
            priors[provider] = oof[:, quality_model.providers.index(provider)]
        elif quality_model is not None and provider in quality_model.providers:
            quality, _ = quality_model.estimates(fit.prompts)
            priors[provider] = quality[:, quality_model.providers.index(provider)]
        else:
            priors[provider] = np.full(len(fit), float(np.nanmean(fit.quality[:, j])))
    return priors
