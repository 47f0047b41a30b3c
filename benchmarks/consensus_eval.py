"""Which consensus strategy picks the best answer, and does its confidence mean anything?

On a recorded table (default: the shipped AlpacaEval data), every strategy chooses among the
recorded answers of a candidate set for each evaluation prompt (the half of the prompts a hash
selects); the chosen answer's label is its quality. Candidate sets: all models, and (when there
are more than three) the three best on the training half. Reported per strategy: quality with a
95% CI, the paired difference against the best single model chosen on the training half, the
mean answer length (AlpacaEval's judge favours long answers), failures (a replayed empty answer
scores 0) and unlabelled answers (left out).

Confidence: for each strategy, how well its confidence predicts the chosen answer's label on the
evaluation prompts, raw and calibrated (Platt, fitted on the training half): ECE, Brier (and a
constant guess's Brier), Spearman correlation. `confidence (model)` uses an answer-quality model
fitted on the training half (agreement, provider record, length): a calibrated probability.

    .venv/bin/python benchmarks/consensus_eval.py [--data PATH] [--lexical-only]
"""

from __future__ import annotations

import argparse
import asyncio
import math

import numpy as np
from recorded import ROOT, PolicyRow, Recorded, load_recorded, print_table, score_policy

from orchestra.consensus import (
    ConfidenceConsensus,
    ConsensusStrategy,
    EmbeddingSpec,
    LexicalConsensus,
    SimilarityConsensus,
    VotingConsensus,
)
from orchestra.consensus.calibration import AnswerQualityModel
from orchestra.routing.calibration import ProbabilityCalibrator, reliability
from orchestra.types import ModelResponse

Answers = dict[str, dict[str, tuple[float | None, str]]]


def strategies(
    similarity: ConsensusStrategy | None, history: dict[str, float], model: AnswerQualityModel
) -> dict[str, ConsensusStrategy]:
    medoid = similarity or LexicalConsensus()
    found = {"lexical (TF-IDF medoid)": LexicalConsensus()}
    if similarity is not None:
        found["similarity (MiniLM medoid)"] = similarity
    found |= {
        "voting (clusters)": VotingConsensus(similarity=medoid, cluster_threshold=0.75),
        "confidence (agreement)": ConfidenceConsensus(similarity=medoid),
        "confidence (history)": ConfidenceConsensus(
            provider_quality=history, order=("logprobs", "historical_quality")
        ),
        "confidence (model)": ConfidenceConsensus(model=model),
    }
    return found


async def choose(
    strategy: ConsensusStrategy, answers: Answers, prompt: str, models: list[str]
) -> tuple[float | None, str, float]:
    """The chosen answer's label, text and the strategy's confidence."""
    responses = [
        ModelResponse(
            content=answers[m][prompt][1],
            provider=m,
            model_name=m,
            metadata={"quality": answers[m][prompt][0]},
        )
        for m in models
        if prompt in answers[m]
    ]
    chosen = await strategy.find_consensus(responses, {})
    return chosen.metadata["quality"], chosen.content, float(chosen.confidence_score or math.nan)


async def evaluate(data: Recorded, lexical_only: bool) -> None:
    answers: Answers = data.wide(data.prompts())
    train, evaluation = data.halves()
    labelled_mean = {
        m: float(
            np.nanmean([np.nan if answers[m].get(p, (None,))[0] is None else answers[m][p][0] for p in train])
        )
        for m in data.providers
    }
    best = max(labelled_mean, key=labelled_mean.get)
    baseline = {p: answers[best].get(p, (None, ""))[0] for p in evaluation}
    groups = [
        (
            [(m, answers[m][p][1], None) for m in data.providers if p in answers[m]],
            [
                math.nan if answers[m][p][0] is None else answers[m][p][0]
                for m in data.providers
                if p in answers[m]
            ],
        )
        for p in train
    ]
    model = AnswerQualityModel.fit(groups)
    similarity = None
    if not lexical_only:
        similarity = SimilarityConsensus(
            EmbeddingSpec(), cache_path=ROOT / ".orchestra" / "embeddings.sqlite"
        )
    candidate_sets = {"all models": sorted(data.providers)}
    if len(data.providers) > 3:
        candidate_sets["3 best on training"] = sorted(labelled_mean, key=labelled_mean.get, reverse=True)[:3]
    rows: list[PolicyRow] = []
    confidence_rows = []
    for label, models in candidate_sets.items():
        for name, strategy in strategies(similarity, labelled_mean, model).items():
            picks = {p: await choose(strategy, answers, p, models) for p in evaluation}
            rows.append(
                score_policy(
                    f"{label}: {name}",
                    {p: (q, a, None) for p, (q, a, _) in picks.items()},
                    baseline,
                    reference_chars=data.reference_chars,
                )
            )
            fitted = [await choose(strategy, answers, p, models) for p in train]
            confidence_rows.append((f"{label}: {name}", fitted, list(picks.values())))
        expected = {}
        lengths = []
        for p in evaluation:
            labels = [answers[m][p][0] for m in models if answers[m].get(p, (None,))[0] is not None]
            expected[p] = (float(np.mean(labels)) if labels else None, "answer", None)
            lengths.append(np.mean([len(answers[m][p][1]) for m in models if p in answers[m]]))
        rows.append(
            score_policy(
                f"{label}: random pick (expected)",
                expected,
                baseline,
                reference_chars=data.reference_chars,
                chars=float(np.mean(lengths)),
            )
        )
        oracle = {
            p: max(
                (
                    (answers[m][p][0], answers[m][p][1], None)
                    for m in models
                    if answers[m].get(p, (None,))[0] is not None
                ),
                key=lambda x: x[0],
                default=(None, "", None),
            )
            for p in evaluation
        }
        rows.append(
            score_policy(
                f"{label}: oracle (best pick)", oracle, baseline, reference_chars=data.reference_chars
            )
        )
    for m in sorted(data.providers):
        picks = {p: (*answers[m].get(p, (None, "")), None) for p in evaluation}
        rows.append(
            score_policy(
                f"single: {m}",
                picks,
                baseline,
                reference_chars=data.reference_chars,
                extra="best on training" if m == best else "",
            )
        )
    quality_name = "win rate" if data.name == "alpacaeval" else "quality"
    print(f"{data.name}: best single model on the {len(train)} training prompts: {best}")
    print_table(rows, quality_name=quality_name, reference=best, prompts=len(evaluation))
    print("\nconfidence as a predictor of the chosen answer's label, on the evaluation prompts:")
    print(f"{'strategy':<52} {'raw: ECE  Brier (const)  Spearman':<36} {'calibrated: ECE  Brier':<24}")
    for name, fitted, held in confidence_rows:
        raw_conf = np.array([c for _, _, c in held])
        labels = np.array([np.nan if q is None else q for q, _, _ in held])
        train_conf = np.array([c for _, _, c in fitted])
        train_labels = np.array([np.nan if q is None else q for q, _, _ in fitted])
        base = float(np.nanmean(train_labels))
        raw = reliability(np.clip(raw_conf, 0, 1), labels, base_rate=base)
        try:
            calibrator = ProbabilityCalibrator.fit(train_conf, train_labels, "platt")
            calibrated = reliability(calibrator.predict(raw_conf), labels, base_rate=base)
            calibrated_text = f"{calibrated.ece:.3f}  {calibrated.brier:.4f}"
        except ValueError:
            calibrated_text = "(constant confidence)"
        raw_text = f"{raw.ece:.3f}  {raw.brier:.4f} ({raw.brier_constant:.4f})  {raw.spearman:+.3f}"
        print(f"{name:<52} {raw_text}    {calibrated_text}")
    lexical = next(r for r in rows if r.name.endswith("lexical (TF-IDF medoid)"))
    confident = next(r for r in rows if r.name.endswith("confidence (model)"))
    print(f"RESULT {data.name}_lexical_quality {100 * lexical.quality:.2f}")
    print(f"RESULT {data.name}_confidence_model_quality {100 * confident.quality:.2f}")
    _, fitted, held = next(c for c in confidence_rows if c[0].endswith("confidence (model)"))
    labels = np.array([np.nan if q is None else q for q, _, _ in held])
    model_report = reliability(
        np.array([c for _, _, c in held]),
        labels,
        base_rate=float(np.nanmean([np.nan if q is None else q for q, _, _ in fitted])),
    )
    print(f"RESULT {data.name}_confidence_model_ece {model_report.ece:.4f}")
    print(f"RESULT {data.name}_confidence_model_brier {model_report.brier:.4f}")
    print(f"RESULT {data.name}_constant_brier {model_report.brier_constant:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=None, help="a recorded table (default: the shipped AlpacaEval data)"
    )
    parser.add_argument("--lexical-only", action="store_true", help="skip the MiniLM similarity (no torch)")
    args = parser.parse_args()
    asyncio.run(evaluate(load_recorded(args.data), args.lexical_only))


if __name__ == "__main__":
    main()
