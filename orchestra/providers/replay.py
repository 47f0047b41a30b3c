"""The `replay` provider: answers from recorded outputs, with simulated latency and priced tokens.

connector = ReplayConnector("gpt-4", dataset, model="gpt4", seed=0)
response = await connector.generate(ModelRequest(prompt=dataset.prompts()[0]))
response.metadata["quality"]  # the recorded judge label, 0.0 / 0.5 / 1.0 for AlpacaEval
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import math
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from orchestra.errors import ConfigError, PromptNotRecorded
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.pricing import Price
from orchestra.providers.recorded import ReplayDataset
from orchestra.types import ModelProvider, ModelRequest, ModelResponse

if TYPE_CHECKING:
    from orchestra.config.schema import ProviderSettings
    from orchestra.providers.registry import BuildContext

CHARS_PER_TOKEN = 4
"""Replayed text has no usage report; tokens are estimated at 4 characters per token."""


def estimate_tokens(text: str) -> int:
    """Rough token count for text that was not tokenised by its provider."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


@dataclass(frozen=True)
class LatencyProfile:
    """Latency = (time to first token + output tokens / rate) x lognormal jitter with mean 1."""

    ttft_ms: float
    tokens_per_s: float
    jitter: float = 0.25

    def sample(self, output_tokens: int, rng: random.Random) -> float:
        base = self.ttft_ms + 1000.0 * output_tokens / self.tokens_per_s
        if self.jitter == 0:
            return base
        return base * rng.lognormvariate(-(self.jitter**2) / 2, self.jitter)


DEFAULT_PROFILE = LatencyProfile(ttft_ms=500.0, tokens_per_s=50.0, jitter=0.25)


@cache
def shipped_latency_profiles() -> dict[str, LatencyProfile]:
    """Per-model profiles from `orchestra/data/latency_profiles.csv` (assumed, not measured)."""
    source = resources.files("orchestra.data").joinpath("latency_profiles.csv")
    with source.open(encoding="utf-8") as handle:
        return {
            row["model"]: LatencyProfile(
                float(row["ttft_ms"]), float(row["tokens_per_s"]), float(row["jitter"])
            )
            for row in csv.DictReader(handle)
        }


class ReplayConnector(BaseModelConnector):
    """Serves one model of a `ReplayDataset`; deterministic for a fixed seed.

    `time_scale` > 0 also sleeps for the simulated latency times that factor.
    """

    provider_type = ModelProvider.REPLAY

    def __init__(
        self,
        name: str,
        dataset: ReplayDataset,
        model: str,
        *,
        price: Price | None = None,
        latency: LatencyProfile | None = None,
        seed: int = 0,
        time_scale: float = 0.0,
    ) -> None:
        super().__init__(name)
        self.dataset = dataset
        self.model = model
        self.price = price
        self.latency = latency or shipped_latency_profiles().get(model, DEFAULT_PROFILE)
        self.seed = seed
        self.time_scale = time_scale

    async def generate(self, request: ModelRequest) -> ModelResponse:
        answer = self.dataset.answer(self.model, request.prompt)
        if answer is None:
            known = self.dataset.prompt_count(self.model)
            raise PromptNotRecorded(
                f"replay model {self.model!r} has no recorded output for this prompt "
                f"(it knows {known} prompts of dataset {self.dataset.name!r}); "
                f"the prompt starts {request.prompt[:60]!r}",
                provider=self.name,
            )
        input_tokens = estimate_tokens((request.system_prompt or "") + request.prompt)
        output_tokens = estimate_tokens(answer.output)
        latency_ms = self.latency.sample(output_tokens, self._rng(request.prompt))
        if self.time_scale > 0:
            await asyncio.sleep(latency_ms / 1000.0 * self.time_scale)
        cost = self.price.cost(input_tokens, output_tokens) if self.price else 0.0
        return self.response(
            answer.output,
            model_name=self.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=latency_ms,
            cost_usd=cost,
            metadata={
                "quality": answer.quality,
                "group": answer.group,
                "simulated_latency": True,
                "tokens_estimated": True,
                "cost_known": self.price is not None,
            },
        )

    def estimate_cost(self, request: ModelRequest) -> float | None:
        """Exact: the recorded answer's tokens at this model's price (0 for an unknown prompt)."""
        answer = self.dataset.answer(self.model, request.prompt)
        if answer is None or self.price is None:
            return 0.0
        input_tokens = estimate_tokens((request.system_prompt or "") + request.prompt)
        return self.price.cost(input_tokens, estimate_tokens(answer.output))

    async def validate_connection(self) -> bool:
        return self.dataset.prompt_count(self.model) > 0

    def get_supported_models(self) -> list[str]:
        return [self.model]

    def _rng(self, prompt: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\x1f{self.model}\x1f{prompt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))


def build_replay(name: str, provider: ProviderSettings, context: BuildContext) -> ReplayConnector:
    """A `ReplayConnector` for `models.<name>` of type replay."""
    assert provider.dataset is not None and provider.default_model is not None
    model = provider.default_model
    dataset = context.dataset(provider.dataset)
    if dataset.prompt_count(model) == 0:
        raise ConfigError(missing_model_message(name, model, provider.dataset, dataset.models()))
    latency = LatencyProfile(**provider.latency.model_dump()) if provider.latency else None
    return ReplayConnector(
        name,
        dataset,
        model,
        price=context.price(provider, model),
        latency=latency,
        seed=context.settings.framework.seed,
        time_scale=provider.time_scale,
    )


def missing_model_message(name: str, model: str, dataset: str, recorded: list[str]) -> str:
    """The error for a replay provider whose model its dataset does not record."""
    shown = ", ".join(recorded[:12]) + (", ..." if len(recorded) > 12 else "")
    return f"models.{name}.model is {model!r}, which dataset {dataset!r} does not record (it has: {shown})"
