"""Calibrated consensus confidence on the recorded AlpacaEval answers: the answer-quality model
(fitted on labelled logs, reported with ECE and Brier on held-out prompts), what `confidence`
uses against `similarity`, and calibration labelled in the request metadata."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from orchestra import Orchestra
from orchestra.analysis.requests import load_requests
from orchestra.consensus import ConfidenceConsensus, LexicalConsensus
from orchestra.consensus.calibration import AnswerQualityModel, CalibratedConsensus, answer_groups
from orchestra.routing.calibration import ProbabilityCalibrator, reliability
from orchestra.types import ModelResponse

from .conftest import ALPACA, alpaca_config

STRONG = {"gpt4": "gpt-4", "claude-2.1": "claude-2.1", "gemini-pro": "gemini-pro"}


def recorded_groups() -> list[tuple[str, list[tuple[str, str, None]], list[float]]]:
    frame = pl.read_parquet(ALPACA).filter(pl.col("model").is_in(list(STRONG)))
    groups = []
    for (prompt,), rows in frame.group_by("instruction", maintain_order=True):
        rows = rows.sort(pl.col("model").replace_strict({m: i for i, m in enumerate(STRONG)}))
        answers = [(STRONG[m], text, None) for m, text in zip(rows["model"], rows["output"], strict=True)]
        groups.append((prompt, answers, (rows["preference"] - 1).to_list()))
    return groups


def responses(answers: list[tuple[str, str, None]]) -> list[ModelResponse]:
    return [ModelResponse(content=text, provider=p, model_name=p) for p, text, _ in answers]


async def test_answer_quality_model_is_calibrated_on_held_out_prompts_and_differs_from_similarity(tmp_path):
    groups = recorded_groups()
    train, test = groups[::2], groups[1::2]
    model = AnswerQualityModel.fit([(a, y) for _, a, y in train])
    probabilities = np.concatenate([model.probabilities(a) for _, a, _ in test])
    labels = np.concatenate([y for _, _, y in test])
    report = reliability(probabilities, labels, base_rate=float(np.mean([v for _, _, y in train for v in y])))
    assert report.ece < 0.08 and report.n == 3 * len(test)
    assert report.brier < report.brier_constant + 0.005  # no worse than the base rate, unlike raw agreement

    loaded = AnswerQualityModel.load(model.save(tmp_path / "answer_quality.json"))
    np.testing.assert_allclose(loaded.probabilities(test[0][1]), model.probabilities(test[0][1]))

    with_model = ConfidenceConsensus(model=tmp_path / "answer_quality.json")
    without = ConfidenceConsensus()
    medoid = LexicalConsensus()
    differ = 0
    for _, answers, _ in test:
        chosen = await with_model.find_consensus(responses(answers), {})
        outcome = chosen.metadata["consensus"]
        assert outcome.details == {"confidence_source": "model", "confidence_calibrated": True}
        plain = (await without.find_consensus(responses(answers), {})).metadata["consensus"]
        lexical = (await medoid.find_consensus(responses(answers), {})).metadata["consensus"]
        # documented: without a model or logprobs, confidence ranks by agreement, as the medoid does
        assert plain.chosen_index == lexical.chosen_index and not plain.details["confidence_calibrated"]
        differ += outcome.chosen_index != lexical.chosen_index
    assert differ > 10  # with a model it weighs more than agreement


async def test_any_strategy_can_be_calibrated_and_the_raw_value_is_kept():
    groups = recorded_groups()
    lexical = LexicalConsensus()
    raw, labels = [], []
    for _, answers, y in groups[:200]:
        outcome = (await lexical.find_consensus(responses(answers), {})).metadata["consensus"]
        raw.append(outcome.confidence)
        labels.append(y[outcome.chosen_index])
    calibrator = ProbabilityCalibrator.fit(raw, labels, "platt")
    calibrated = CalibratedConsensus(lexical, calibrator)
    chosen = await calibrated.find_consensus(responses(groups[300][1]), {})
    outcome = chosen.metadata["consensus"]
    assert outcome.details["confidence_calibrated"] and outcome.details["calibrator"] == "platt"
    assert outcome.confidence == pytest.approx(
        float(calibrator.predict([outcome.details["raw_confidence"]])[0])
    )
    assert chosen.confidence_score == outcome.confidence


async def test_metadata_says_whether_confidence_is_calibrated_and_logs_give_training_groups(
    tmp_path, tracking
):
    groups = recorded_groups()
    AnswerQualityModel.fit([(a, y) for _, a, y in groups[:200]]).save(tmp_path / "model.json")
    routing = {"rules": [{"providers": list(STRONG.values()), "require_consensus": True}]}
    config = alpaca_config(**routing) | {"consensus": {"default_strategy": "lexical"}}
    calibrated = alpaca_config(**routing) | {
        "consensus": {
            "default_strategy": "confidence",
            "strategies": {"confidence": {"model": str(tmp_path / "model.json")}},
        }
    }
    prompt = groups[250][0]
    for raw, expected in ((config, False), (calibrated, True)):
        orch = Orchestra(raw, tracking=tracking)
        async with orch.run(f"calibrated={expected}") as run:
            result = await orch.process_request(prompt)
        await orch.aclose()
        assert result["metadata"]["consensus_applied"]
        assert result["metadata"]["confidence_calibrated"] is expected
    logged = answer_groups(load_requests(run_ids=[run.run_id], tracking=tracking))
    ((answers, labels),) = logged
    assert [p for p, _, _ in answers] == list(STRONG.values())
    assert labels == pytest.approx(groups[250][2]) and not any(math.isnan(v) for v in labels)
