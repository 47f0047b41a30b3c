"""Prices from the genai-prices catalogue: today's models, dated prices, tiers, the project's own
rows, config overrides, and the warning for a model nobody prices. Expected costs are by hand
from the providers' list prices (USD per 1M tokens)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime

import pytest
import yaml

from orchestra import Orchestra, Price, PriceTable, load_settings
from orchestra.providers.price_catalogue import CataloguePrice
from orchestra.providers.usage import Usage
from tests.conftest import ROOT, alpaca_config

TABLE = PriceTable.default()
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def test_a_current_model_with_cached_and_reasoning_tokens():
    # gpt-5-mini: $0.25 in, $0.025 cached in, $2 out. 10,000 prompt tokens of which 4,000 cached;
    # 2,000 output tokens of which 1,500 reasoning (billed as output, already inside the 2,000):
    # (6,000 x 0.25 + 4,000 x 0.025 + 2,000 x 2) / 1M = (1,500 + 100 + 4,000) / 1M = $0.0056
    price = TABLE.lookup("gpt-5-mini")
    assert isinstance(price, CataloguePrice) and price.source.startswith("genai-prices")
    assert price.cost(10_000, 2_000, 4_000, 0, 1_500, at=NOW) == pytest.approx(0.0056)
    # the provider's usage report, through the path every connector takes, on a fixed day
    usage = Usage(10_000, 2_000, cached_input_tokens=4_000, reasoning_tokens=1_500)
    assert usage.cost(TABLE.lookup("gpt-5-mini", on=NOW.date())) == pytest.approx(0.0056)


def test_the_call_date_picks_the_price_in_force_and_its_tiers():
    # claude-sonnet-4-6 until 2026-03-12: $3 in / $15 out, and $6 / $22.50 for every token of a
    # request with more than 200,000 input tokens; from 2026-03-13 one flat $3 / $15.
    price = TABLE.lookup("claude-sonnet-4-6")
    before, after = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    assert price.cost(100_000, 1_000, at=before) == pytest.approx((100_000 * 3 + 1_000 * 15) / 1e6)
    assert price.cost(300_000, 1_000, at=before) == pytest.approx((300_000 * 6 + 1_000 * 22.5) / 1e6)
    assert price.cost(300_000, 1_000, at=after) == pytest.approx((300_000 * 3 + 1_000 * 15) / 1e6)
    # the same counts are remembered per price in force, never across a change of price
    assert price.cost(300_000, 1_000, at=before) == pytest.approx((300_000 * 6 + 1_000 * 22.5) / 1e6)
    # A replay fixes the day: the same model looked up "on" a date is priced on it, whenever it runs.
    pinned = TABLE.lookup("claude-sonnet-4-6", on=date(2026, 3, 1))
    assert pinned.cost(300_000, 1_000, at=after) == pytest.approx(1.8225)
    assert pinned.as_of == "2026-03-01"


def test_a_recorded_2023_model_is_priced_at_its_dated_list_price(tracking):
    # AlpacaEval's `gpt4` is gpt-4 (2023): $30 in / $60 out. The replay takes the dataset's
    # recorded_on as the pricing day; the price comes from the catalogue under the catalogue's name.
    config = alpaca_config()
    config["datasets"]["alpacaeval"]["recorded_on"] = "2024-01-09"
    orch = Orchestra(config, tracking=tracking)
    try:
        price = orch.model_registry.get("gpt-4").price
        assert price.on == date(2024, 1, 9) and price.catalogue_model == "gpt-4"
        assert (price.input_per_1m, price.output_per_1m) == (30.0, 60.0)
        result = orch.process_request_sync(orch.datasets["alpacaeval"].prompts()[0], user_id="u1")
        tokens = result["metadata"]["tokens"]
        by_hand = (tokens["input"] * 30 + tokens["output"] * 60) / 1e6
        assert result["metadata"]["cost_usd"] == pytest.approx(by_hand)
    finally:
        orch.close()


def test_the_shipped_offline_config_prices_replays_on_the_recording_date():
    settings = load_settings(ROOT / "config.yaml")
    assert settings.datasets["alpacaeval"].recorded_on == date(2024, 1, 9)


def test_project_rows_only_where_the_catalogue_lacks_or_misprices_a_model():
    from orchestra.providers.price_catalogue import catalogue_price

    # llama-2-70b ran on Replicate, which the catalogue does not cover: the project's dated row.
    llama = TABLE.lookup("llama-2-70b-chat-hf")
    assert catalogue_price("llama-2-70b-chat-hf") is None
    assert (llama.input_per_1m, llama.output_per_1m, llama.as_of) == (0.65, 2.75, "2024-03-01")
    # gemini-pro: the catalogue's per-token figure is Google's per-character rate; the row corrects it.
    assert catalogue_price("gemini-pro").input_per_1m == 0.125  # genai-prices 0.2.3, pinned in dev
    gemini = TABLE.lookup("gemini-pro")
    assert (gemini.input_per_1m, gemini.output_per_1m, gemini.as_of) == (0.5, 1.5, "2024-05-01")
    # a recorded name the catalogue knows under another name
    assert TABLE.lookup("Mistral-7B-Instruct-v0.2").source.endswith("(mistral/mistral-7b)")


def test_overrides_win_over_the_catalogue_and_the_rows(tracking):
    table = TABLE.with_overrides({"gpt-4": Price("gpt-4", 1.0, 2.0), "gemini-pro": Price("gemini-pro", 0, 0)})
    assert table.cost("gpt-4", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert table.cost("gpt4", 1_000_000, 0) == pytest.approx(1.0)  # the recorded name follows
    assert table.cost("gemini-pro", 1_000, 1_000) == 0.0
    config = alpaca_config()
    config["pricing"] = {"overrides": {"gpt-4": {"input_per_1m": 0.0, "output_per_1m": 7.0}}}
    orch = Orchestra(config, tracking=tracking)
    try:
        price = orch.model_registry.get("gpt-4").price
        assert (price.output_per_1m, price.source) == (7.0, "config")
    finally:
        orch.close()


def test_the_live_config_models_are_in_the_catalogue_under_their_exact_names():
    settings = load_settings(ROOT / "config.live.yaml")
    for name in ("openai", "anthropic", "google"):
        model = settings.models[name].default_model
        price = TABLE.lookup(model)
        assert isinstance(price, CataloguePrice), model
        assert price.catalogue_model == model and price.catalogue_provider == name


def test_an_unknown_model_is_unpriced_and_check_warns(tmp_path):
    assert TABLE.lookup("no-such-model-7b") is None
    config = {
        "models": {
            "local": {
                "type": "openai_compatible",
                "model": "no-such-model-7b",
                "base_url": "http://127.0.0.1:9/v1",
            },
            "priced": {
                "type": "openai_compatible",
                "model": "no-such-model-7b",
                "base_url": "http://127.0.0.1:9/v1",
                "price": {"input_per_1m": 0.0, "output_per_1m": 0.0},
            },
        },
        "routing": {"rules": [{"providers": ["local", "priced"]}]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "orchestra", "check", "--config", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stdout + result.stderr
    assert "models.local (no-such-model-7b) has no known price" in warnings[0]


def test_lookups_are_cached():
    table = PriceTable.default()
    assert table.lookup("gpt-4o") is table.lookup("gpt-4o")
    assert table.lookup("gpt-4o", on=date(2025, 1, 1)) is not table.lookup("gpt-4o")


def test_an_unquoted_yaml_date_survives_a_sweeps_config_copy():
    from orchestra.config.loader import settings_from_dict
    from orchestra.sweeps.spec import apply_overrides

    raw = yaml.safe_load("datasets: {alpacaeval: {path: x.parquet, recorded_on: 2024-01-09}}")
    copied = apply_overrides(raw, {"framework.name": "arm"}, seed=1)
    settings = settings_from_dict(copied, base_dir=ROOT)
    assert settings.datasets["alpacaeval"].recorded_on == date(2024, 1, 9)
