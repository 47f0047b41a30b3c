"""The demo's numbers equal a direct computation over the recorded data table."""

from __future__ import annotations

import math
import shutil

import numpy as np
import polars as pl
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from orchestra.app.demo import render, run_demo
from orchestra.providers.pricing import PriceTable
from orchestra.routing.complexity import HeuristicComplexityEvaluator
from orchestra.tracking.reader import read_request_table
from orchestra.tracking.settings import TrackingSettings
from tests.conftest import ALPACA, ROOT

MODEL = {
    "gpt-4": "gpt4",
    "claude-2.1": "claude-2.1",
    "gemini-pro": "gemini-pro",
    "mixtral-8x7b": "Mixtral-8x7B-Instruct-v0.1",
    "mistral-7b": "Mistral-7B-Instruct-v0.2",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, empty_store_template):
    folder = tmp_path_factory.mktemp("demo")
    shutil.copy(empty_store_template, folder / "mlflow.db")
    tracking = TrackingSettings(
        tracking_uri="sqlite:///mlflow.db", artifact_location="artifacts", spool_dir="spool", base_dir=folder
    ).resolved()
    results, _ = pytest.importorskip("asyncio").run(
        run_demo(ROOT / "config.yaml", tracking=tracking, progress=False)
    )
    return {r.arm.name: r for r in results}, tracking


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    frame = pl.read_parquet(ALPACA).with_columns((pl.col("preference") - 1).alias("quality"))
    return frame.pivot(
        on="model", index="instruction", values=["quality", "output"], aggregate_function="first"
    )


def direct_mean(table: pl.DataFrame, model: str) -> float:
    return table[f"quality_{model}"].mean() * 100


def test_always_gpt4_equals_gpt4_mean_recorded_win_rate(demo, table):
    results, _ = demo
    row = results["always-gpt-4"]
    assert row.win_rate.n == 403
    assert row.win_rate.percent == pytest.approx(direct_mean(table, "gpt4"), abs=1e-9)
    assert row.win_rate.percent == pytest.approx(19.3548, abs=1e-4)  # data/alpacaeval/README.md, DEV
    assert row.win_rate.low < row.win_rate.percent < row.win_rate.high
    assert row.answered_share == {"gpt-4": 1.0}


def test_cheapest_is_mistral_7b_and_matches_its_mean(demo, table):
    results, _ = demo
    row = results["cheapest (mistral-7b)"]
    assert row.win_rate.percent == pytest.approx(direct_mean(table, "Mistral-7B-Instruct-v0.2"), abs=1e-9)
    prices = PriceTable.default()
    price = prices.lookup("Mistral-7B-Instruct-v0.2")
    outputs = table["output_Mistral-7B-Instruct-v0.2"].to_list()
    prompts = table["instruction"].to_list()
    expected_cost = np.mean(
        [
            price.cost(math.ceil(len(p) / 4), math.ceil(len(o) / 4))
            for p, o in zip(prompts, outputs, strict=True)
        ]
    )
    assert row.cost_per_request == pytest.approx(expected_cost, rel=1e-9)


def _medoid(texts: list[str]) -> int:
    """The documented rule: highest mean similarity to the others (9 decimals), earliest on ties."""
    vectors = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    similarity = (vectors @ vectors.T).toarray()
    np.fill_diagonal(similarity, 0.0)
    return int(np.argmax(np.round(similarity.sum(axis=1) / (len(texts) - 1), 9)))


def test_consensus_arm_matches_a_direct_medoid_computation(demo, table):
    results, _ = demo
    strong = ["gpt-4", "claude-2.1", "gemini-pro"]
    picks = []
    for row in table.iter_rows(named=True):
        texts = [row[f"output_{MODEL[p]}"] for p in strong]
        picks.append(row[f"quality_{MODEL[strong[_medoid(texts)]]}"])
    assert results["consensus-3-strong"].win_rate.percent == pytest.approx(np.mean(picks) * 100, abs=1e-9)
    assert results["consensus-3-strong"].calls_per_request == 3.0


def test_complexity_routed_arm_matches_a_direct_computation(demo, table):
    results, _ = demo
    evaluator = HeuristicComplexityEvaluator(complex_from=0.5)
    strong = ["gpt-4", "claude-2.1", "gemini-pro"]
    picks = []
    for row in table.iter_rows(named=True):
        complexity = evaluator.classify(evaluator.score_sync(row["instruction"])).value
        if complexity == "complex":
            texts = [row[f"output_{MODEL[p]}"] for p in strong]
            provider = strong[_medoid(texts)]
        else:
            provider = "mixtral-8x7b" if complexity == "simple" else "gemini-pro"
        picks.append(row[f"quality_{MODEL[provider]}"])
    assert results["complexity-routed"].win_rate.percent == pytest.approx(np.mean(picks) * 100, abs=1e-9)


def test_runs_metrics_and_request_tables_are_in_mlflow(demo):
    from mlflow.tracking import MlflowClient

    results, tracking = demo
    client = MlflowClient(tracking.tracking_uri)
    for result in results.values():
        run = client.get_run(result.run_id)
        assert run.data.tags["orchestra.kind"] == "demo-arm"
        assert "mlflow.parentRunId" in run.data.tags
        assert run.data.metrics["win_rate"] == pytest.approx(result.win_rate.percent)
        assert run.data.metrics["requests"] == 403
        assert run.data.params["demo.arm"] == result.arm.name
        requests = read_request_table(tracking, result.run_id)
        assert requests.height == 403
        assert requests["quality"].mean() * 100 == pytest.approx(result.win_rate.percent)


def test_render_has_a_row_per_configuration(demo):
    results, _ = demo
    text = render(list(results.values()))
    for name in results:
        assert name in text
    assert "19.35%" in text


def test_each_configuration_is_compared_to_the_control_pair_by_prompt(demo, table):
    from scipy import stats

    from orchestra.app.demo import compare_to_control

    results, _ = demo
    comparisons = compare_to_control(list(results.values()))
    assert set(comparisons) == {"cheapest (mistral-7b)", "consensus-3-strong", "complexity-routed"}
    gpt4 = table["quality_gpt4"].to_numpy() * 100
    mistral = table["quality_Mistral-7B-Instruct-v0.2"].to_numpy() * 100
    cheapest = comparisons["cheapest (mistral-7b)"]
    # demo's prompt order is the dataset's, the table's is the pivot's: compare order-free numbers
    assert cheapest.effect == pytest.approx((mistral - gpt4).mean(), abs=1e-9)
    direct = stats.ttest_rel(mistral, gpt4)
    assert cheapest.p_value == pytest.approx(direct.pvalue, rel=1e-9)
    assert cheapest.p_adjusted >= cheapest.p_value  # Holm over the three comparisons
    text = render(list(results.values()))
    assert "(control)" in text and cheapest.verdict in text
    assert "<td>always-gpt-4</td>" in results["always-gpt-4"]._repr_html_()  # in Jupyter


def test_the_packaged_demo_config_matches_the_repository_one(tmp_path, monkeypatch):
    from orchestra.app.demo import demo_settings
    from orchestra.config.loader import load_settings

    monkeypatch.chdir(tmp_path)  # no config.yaml here: the packaged one is used
    packaged = demo_settings(data=ALPACA)
    repository = load_settings(ROOT / "config.yaml")
    for section in ("models", "routing", "consensus", "framework", "performance", "improvement"):
        assert getattr(packaged, section) == getattr(repository, section), section
    assert packaged.datasets["alpacaeval"].path == str(ALPACA.resolve())
    assert packaged.datasets["alpacaeval"].model_copy(update={"path": "x"}) == repository.datasets[
        "alpacaeval"
    ].model_copy(update={"path": "x"})


def test_a_missing_recorded_table_asks_for_data(tmp_path, monkeypatch):
    from orchestra.app.demo import demo_settings
    from orchestra.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="pass --data PATH"):
        demo_settings()
    with pytest.raises(ConfigError, match="does not exist"):
        demo_settings(data=tmp_path / "nothing.parquet")
