"""A sweep whose prompt file is a recorded table (one row per prompt and model) sends each
prompt once per arm, or refuses when the repeats disagree on the task type."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from orchestra import ConfigError
from orchestra.sweeps.prompts import load_prompts
from orchestra.sweeps.spec import PromptSource

from .conftest import ALPACA


def test_a_recorded_table_gives_each_prompt_once(tmp_path, caplog):
    recorded = pl.read_parquet(ALPACA)
    recorded.write_parquet(tmp_path / "recorded.parquet")
    source = PromptSource(file="recorded.parquet", column="instruction", task_type_column="dataset")
    with caplog.at_level(logging.INFO, logger="orchestra.sweeps"):
        prompts = load_prompts(source, tmp_path, {}, "general")
    assert recorded.height == 403 * 8 and len(prompts) == 403  # not 3,224 requests per arm
    assert [p for p, _ in prompts] == recorded["instruction"].unique(maintain_order=True).to_list()
    first = recorded.unique("instruction", keep="first", maintain_order=True)
    assert dict(prompts) == dict(zip(first["instruction"], first["dataset"], strict=True))
    assert "3224 rows but 403 distinct prompts" in caplog.text


def test_repeats_with_different_task_types_are_refused(tmp_path):
    pl.DataFrame({"prompt": ["a?", "b?", "a?"], "kind": ["x", "y", "z"]}).write_csv(tmp_path / "p.csv")
    source = PromptSource(file="p.csv", task_type_column="kind")
    with pytest.raises(ConfigError, match=r"repeats a prompt with different task types \('x' and 'z'\)"):
        load_prompts(source, tmp_path, {}, "general")
