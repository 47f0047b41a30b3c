"""Time pricing, which runs on every call: a catalogue price (genai-prices) against the fixed
per-token arithmetic it replaced, and the caches in front of the catalogue.

- lookup: `PriceTable.lookup` of a model, first time (the catalogue's matching rules) and again
  (this table's cache);
- live cost: a catalogue price with no fixed day: the price in force at that moment (tiers,
  dated and time-of-day prices) is looked up each call, and the cost of the same counts under
  the same price is remembered; `live uncached` asks the catalogue's `calc_price` each call (as
  before issue 17);
- replay cost: a catalogue price fixed to a recording's day; the same token counts recur across
  a replayed sweep's arms, so their costs are remembered;
- baseline: the fixed `Price` arithmetic of the former CSV-only table.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/pricing_speed.py [--calls 20000]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from genai_prices import Usage

from orchestra.providers.price_catalogue import _by_id
from orchestra.providers.pricing import Price, PriceTable


def per_call_us(function: Callable[[int], object], calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        function(i)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(0)
    # 400 distinct (input, output, cached) usages, as a 400-prompt replay would repeat them
    usages = [(rng.randint(50, 2_000), rng.randint(50, 1_500), 0) for _ in range(400)]
    models = [f"model-{i}" for i in range(args.calls)]

    table = PriceTable.default()
    first_lookup = per_call_us(lambda i: PriceTable.default().lookup(("gpt-4o", "gpt-5-mini")[i % 2]), 200)
    cached_lookup = per_call_us(lambda i: table.lookup("gpt-4o"), args.calls)
    miss_lookup = per_call_us(lambda i: table.lookup(models[i]), args.calls)

    live = table.lookup("gpt-4o")
    replay = table.lookup("gpt-4o", on=date(2024, 11, 1))
    fixed = Price("gpt-4o", 2.5, 10.0, cached_input_per_1m=1.25)
    assert live is not None and replay is not None
    live_us = per_call_us(lambda i: live.cost(*usages[i % 400]), args.calls)
    provider, info = _by_id((live.catalogue_provider, live.catalogue_model))

    def uncached(i: int) -> float:
        tokens_in, tokens_out, cached = usages[i % 400]
        usage = Usage(input_tokens=tokens_in, output_tokens=tokens_out, cache_read_tokens=cached)
        return float(info.calc_price(usage, provider, genai_request_timestamp=datetime.now(UTC)).total_price)

    uncached_us = per_call_us(uncached, args.calls)
    replay_us = per_call_us(lambda i: replay.cost(*usages[i % 400]), args.calls)
    fixed_us = per_call_us(lambda i: fixed.cost(*usages[i % 400]), args.calls)
    for i in range(400):
        assert abs(live.cost(*usages[i]) - fixed.cost(*usages[i])) < 1e-12
        assert live.cost(*usages[i]) == uncached(i)

    print(f"lookup: first {first_lookup:.1f} us, cached {cached_lookup:.2f} us, unknown {miss_lookup:.1f} us")
    print(
        f"cost per call: live {live_us:.1f} us (uncached {uncached_us:.1f} us), replay {replay_us:.2f} us, "
        f"fixed {fixed_us:.2f} us"
    )
    print(f"RESULT price_lookup_first_us {first_lookup:.1f}")
    print(f"RESULT price_lookup_cached_us {cached_lookup:.2f}")
    print(f"RESULT price_lookup_unknown_model_us {miss_lookup:.1f}")
    print(f"RESULT cost_live_catalogue_us {live_us:.1f}")
    print(f"RESULT cost_live_catalogue_uncached_us {uncached_us:.1f}")
    print(f"RESULT cost_replay_catalogue_us {replay_us:.2f}")
    print(f"RESULT cost_fixed_baseline_us {fixed_us:.2f}")


if __name__ == "__main__":
    main()
