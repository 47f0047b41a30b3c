"""Token usage as providers report it, normalised so cost is computed one way for all.

Conventions: `input_tokens` counts every input token, cached and cache-write ones included;
`output_tokens` counts every billed output token, reasoning ("thinking") tokens included.

    Usage(input_tokens=1_000, output_tokens=200, cached_input_tokens=600).cost(price)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestra.providers.pricing import Price


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    def cost(self, price: Price | None) -> float:
        """USD for this usage at `price` (0.0 when the model has no price)."""
        if price is None:
            return 0.0
        return price.cost(
            self.input_tokens,
            self.output_tokens,
            cached_input_tokens=self.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        # not dataclasses.asdict: it deep-copies field by field, and this runs for every call
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


def confidence_from_logprobs(logprobs: Sequence[float]) -> float | None:
    """Geometric-mean token probability, exp(mean logprob), in [0, 1]; None without logprobs."""
    if not logprobs:
        return None
    return math.exp(sum(logprobs) / len(logprobs))
