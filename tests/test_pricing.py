"""Price table arithmetic, checked against hand-computed cases."""

from __future__ import annotations

import pytest

from orchestra import Price, PriceTable
from tests.conftest import RECORDED_MODELS


def test_shipped_table_prices_every_recorded_model():
    table = PriceTable.default()
    for model in RECORDED_MODELS:
        price = table.lookup(model)
        assert price is not None, model
        assert price.as_of and price.source


def test_gpt4_cost_by_hand():
    # gpt-4: $30 / 1M input, $60 / 1M output -> 1,000 in + 500 out = 0.03 + 0.03 = $0.06
    assert PriceTable.default().cost("gpt-4", 1_000, 500) == pytest.approx(0.06)
    assert PriceTable.default().cost("gpt4", 1_000, 500) == pytest.approx(0.06)  # alias


def test_cached_and_cache_write_tokens_by_hand():
    price = Price("m", input_per_1m=3.0, output_per_1m=15.0, cached_input_per_1m=0.3, cache_write_per_1m=3.75)
    # 10,000 input of which 6,000 cached and 2,000 written to cache; 1,000 output:
    # 2,000 x 3 + 6,000 x 0.3 + 2,000 x 3.75 + 1,000 x 15 = 6,000 + 1,800 + 7,500 + 15,000 = 30,300 / 1M
    assert price.cost(10_000, 1_000, cached_input_tokens=6_000, cache_write_tokens=2_000) == pytest.approx(
        0.0303
    )


def test_unknown_model_has_no_price_and_overrides_win():
    table = PriceTable.default()
    assert table.cost("no-such-model", 10, 10) is None
    overridden = table.with_overrides({"gpt-4": Price("gpt-4", 1.0, 2.0)})
    assert overridden.cost("gpt-4", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert overridden.cost("gpt4", 1_000_000, 0) == pytest.approx(1.0)  # aliases follow the override


def test_config_price_override_reaches_the_replay_provider(tracking):
    from orchestra import Orchestra
    from tests.conftest import alpaca_config

    config = alpaca_config()
    config["models"]["gpt-4"]["price"] = {"input_per_1m": 0.0, "output_per_1m": 1_000_000.0}
    orch = Orchestra(config, tracking=tracking)
    connector = orch.model_registry.get("gpt-4")
    assert connector.price.output_per_1m == 1_000_000.0
    orch.close()
