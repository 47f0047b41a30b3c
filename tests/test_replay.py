"""The replay provider: recorded answers, exact prompt match, seeded latency, priced tokens."""

from __future__ import annotations

import math

import pandas as pd
import polars as pl
import pytest

from orchestra import ConfigError, ModelRequest, PromptNotRecorded, ReplayConnector, ReplayDataset
from orchestra.providers.replay import LatencyProfile, estimate_tokens
from tests.conftest import ALPACA, RECORDED_MODELS


@pytest.fixture(scope="module")
def alpaca() -> ReplayDataset:
    return ReplayDataset.from_path(
        ALPACA,
        prompt_column="instruction",
        quality_column="preference",
        quality_offset=-1.0,
        group_column="dataset",
    )


def test_alpacaeval_loads_with_quality_as_win_score(alpaca):
    assert len(alpaca) == 403 * 8
    assert alpaca.models() == sorted(RECORDED_MODELS)
    assert set(alpaca.table["quality"].unique()) <= {0.0, 0.5, 1.0}
    gpt4_mean = alpaca.table.filter(pl.col("model") == "gpt4")["quality"].mean()
    assert gpt4_mean * 100 == pytest.approx(19.354839, abs=1e-4)  # the README's DEV win rate


async def test_answer_is_the_recorded_output(alpaca):
    prompt = alpaca.prompts()[0]
    connector = ReplayConnector("gpt-4", alpaca, "gpt4")
    response = await connector.generate(ModelRequest(prompt=prompt))
    assert response.content == alpaca.answer("gpt4", prompt).output
    assert response.provider == "gpt-4" and response.model_name == "gpt4"
    assert response.metadata["quality"] in (0.0, 0.5, 1.0)
    assert response.output_tokens == math.ceil(len(response.content) / 4)
    assert response.cost_usd == 0.0  # no price given to this connector


async def test_unrecorded_prompt_names_the_model_and_how_many_prompts_it_knows(alpaca):
    connector = ReplayConnector("gpt-4", alpaca, "gpt4")
    with pytest.raises(
        PromptNotRecorded, match=r"replay model 'gpt4' has no recorded output .*knows 403 prompts"
    ):
        await connector.generate(ModelRequest(prompt="A prompt nobody recorded"))


async def test_latency_is_deterministic_for_a_seed_and_varies_across_seeds(alpaca):
    prompt = alpaca.prompts()[3]
    first = await ReplayConnector("a", alpaca, "gpt4", seed=7).generate(ModelRequest(prompt=prompt))
    again = await ReplayConnector("a", alpaca, "gpt4", seed=7).generate(ModelRequest(prompt=prompt))
    other = await ReplayConnector("a", alpaca, "gpt4", seed=8).generate(ModelRequest(prompt=prompt))
    assert first.latency_ms == again.latency_ms
    assert first.latency_ms != other.latency_ms


def test_latency_profile_mean_matches_its_parameters():
    import random

    profile = LatencyProfile(ttft_ms=500, tokens_per_s=50, jitter=0.3)
    rng = random.Random(0)
    samples = [profile.sample(100, rng) for _ in range(20_000)]
    assert sum(samples) / len(samples) == pytest.approx(500 + 2000, rel=0.02)  # jitter has mean 1
    assert LatencyProfile(100, 10, jitter=0).sample(10, rng) == 1100


def test_any_table_works_pandas_or_polars():
    frame = pd.DataFrame({"q": ["a?", "b?"], "m": ["x", "x"], "out": ["A", "B"], "score": [1.0, 0.0]})
    dataset = ReplayDataset(
        frame, prompt_column="q", model_column="m", output_column="out", quality_column="score"
    )
    assert dataset.answer("x", "b?").output == "B"
    assert dataset.answer("x", "b?").quality == 0.0
    assert dataset.answer("x", "c?") is None
    unlabeled = ReplayDataset(pl.DataFrame({"prompt": ["p"], "model": ["m"], "output": ["o"]}))
    assert unlabeled.answer("m", "p").quality is None


def test_missing_columns_and_duplicates_are_config_errors():
    with pytest.raises(ConfigError, match=r"column\(s\) \['instruction'\] not found; the table has: prompt"):
        ReplayDataset(
            pl.DataFrame({"prompt": ["p"], "model": ["m"], "output": ["o"]}), prompt_column="instruction"
        )
    duplicated = pl.DataFrame({"prompt": ["p", "p"], "model": ["m", "m"], "output": ["o", "other"]})
    with pytest.raises(ConfigError, match="repeat a \\(model, prompt\\) pair"):
        ReplayDataset(duplicated)


def test_file_formats(tmp_path):
    frame = pl.DataFrame({"prompt": ["p"], "model": ["m"], "output": ["o"]})
    frame.write_csv(tmp_path / "t.csv")
    frame.write_ndjson(tmp_path / "t.jsonl")
    for name in ("t.csv", "t.jsonl"):
        assert ReplayDataset.from_path(tmp_path / name).answer("m", "p").output == "o"
    with pytest.raises(ConfigError, match="unsupported format"):
        (tmp_path / "t.xlsx").write_text("x")
        ReplayDataset.from_path(tmp_path / "t.xlsx")


def test_token_estimate():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
