"""Cost from reported usage, per provider, against hand-computed cases (prices per 1M tokens)."""

from __future__ import annotations

import pytest
from anthropic.types import Usage as AnthropicUsage
from google.genai import types as genai_types
from openai.types import CompletionUsage
from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails

from orchestra.providers.anthropic import _usage as anthropic_usage
from orchestra.providers.google import _usage as gemini_usage
from orchestra.providers.openai_format import _usage as openai_usage
from orchestra.providers.pricing import PriceTable
from orchestra.providers.usage import Usage, confidence_from_logprobs

PRICES = PriceTable.default()


def test_openai_cached_and_reasoning_tokens():
    # gpt-4o: $2.50 in, $1.25 cached in, $10 out. 1,000 prompt tokens of which 600 cached;
    # 500 completion tokens of which 300 reasoning (reasoning is billed as output, already inside).
    # (400 x 2.50 + 600 x 1.25 + 500 x 10) / 1M = (1,000 + 750 + 5,000) / 1M = $0.00675
    usage = openai_usage(
        CompletionUsage(
            prompt_tokens=1000,
            completion_tokens=500,
            total_tokens=1500,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=600),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=300),
        )
    )
    assert usage == Usage(1000, 500, cached_input_tokens=600, reasoning_tokens=300)
    assert usage.cost(PRICES.lookup("gpt-4o")) == pytest.approx(0.00675)


def test_anthropic_cache_reads_and_writes():
    # claude-3-5-sonnet: $3 in, $0.30 cache read, $3.75 cache write, $15 out. Anthropic reports
    # input_tokens=200 apart from 1,000 cache-read and 500 cache-write tokens; output 300.
    # (200 x 3 + 1,000 x 0.30 + 500 x 3.75 + 300 x 15) / 1M = (600 + 300 + 1,875 + 4,500) / 1M
    usage = anthropic_usage(
        AnthropicUsage(
            input_tokens=200, output_tokens=300, cache_read_input_tokens=1000, cache_creation_input_tokens=500
        )
    )
    assert usage == Usage(1700, 300, cached_input_tokens=1000, cache_write_tokens=500)
    assert usage.cost(PRICES.lookup("claude-3-5-sonnet-20241022")) == pytest.approx(0.007275)


def test_gemini_cached_content_and_thoughts():
    # gemini-1.5-flash: $0.075 in, $0.01875 cached, $0.30 out. Prompt 2,000 tokens including 1,000
    # cached; 400 candidate tokens plus 100 thought tokens (billed as output).
    # (1,000 x 0.075 + 1,000 x 0.01875 + 500 x 0.30) / 1M = (75 + 18.75 + 150) / 1M = $0.00024375
    usage = gemini_usage(
        genai_types.GenerateContentResponseUsageMetadata(
            prompt_token_count=2000,
            candidates_token_count=400,
            thoughts_token_count=100,
            cached_content_token_count=1000,
            total_token_count=2500,
        )
    )
    assert usage == Usage(2000, 500, cached_input_tokens=1000, reasoning_tokens=100)
    assert usage.cost(PRICES.lookup("gemini-1.5-flash")) == pytest.approx(0.00024375)


def test_unpriced_model_costs_nothing_and_missing_usage_is_zero():
    assert Usage(100, 100).cost(None) == 0.0
    assert openai_usage(None) == Usage(0, 0) and gemini_usage(None) == Usage(0, 0)


def test_logprob_confidence_is_the_geometric_mean_probability():
    import math

    assert confidence_from_logprobs([math.log(0.5), math.log(0.5)]) == pytest.approx(0.5)
    assert confidence_from_logprobs([0.0]) == 1.0
    assert confidence_from_logprobs([]) is None
