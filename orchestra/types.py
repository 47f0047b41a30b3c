"""The request and response types every provider speaks.

request = ModelRequest(prompt="Name three primes.", temperature=0.2)
response = await connector.generate(request)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelProvider(StrEnum):
    """Kinds of provider; a configured provider instance has a name and one of these types."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GOOGLE = "google"
    OPENAI_COMPATIBLE = "openai_compatible"
    REPLAY = "replay"
    FUNCTION = "function"
    CUSTOM = "custom"


class TaskComplexity(StrEnum):
    """How hard a prompt is, as judged by a complexity evaluator."""

    SIMPLE = "simple"
    MEDIUM = "medium"
    COMPLEX = "complex"


class ModelRequest(BaseModel):
    """What is sent to one provider."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    system_prompt: str | None = None
    model_specific_params: dict[str, Any] = Field(default_factory=dict)


class ModelResponse(BaseModel):
    """What one provider answered.

    `tokens_used` is input plus output tokens; `metadata` holds provider-specific extras
    (for replayed answers: the recorded quality label and the simulated latency).
    """

    model_config = ConfigDict(extra="forbid")

    content: str
    provider: str
    model_name: str
    tokens_used: int = 0
    latency_ms: float = 0.0
    confidence_score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
