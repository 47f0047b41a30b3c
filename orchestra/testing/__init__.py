"""Local HTTP servers that speak OpenAI's, Anthropic's and Gemini's wire formats, for tests and benchmarks.

with FakeOpenAI() as server:
    OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)

Run one in its own process with ``python -m orchestra.testing openai --port 8123 --latency 0.2``.
"""

from __future__ import annotations

from orchestra.testing.fake_anthropic import FakeAnthropic
from orchestra.testing.fake_gemini import FakeGemini
from orchestra.testing.fake_openai import FakeOpenAI
from orchestra.testing.fake_server import DEFAULT_API_KEY, Exchange, FakeServer, Fault, RecordedRequest, echo

SERVERS: dict[str, type[FakeServer]] = {
    "openai": FakeOpenAI,
    "anthropic": FakeAnthropic,
    "gemini": FakeGemini,
}
"""The fake server class for each provider name the command line accepts."""

__all__ = [
    "DEFAULT_API_KEY",
    "SERVERS",
    "Exchange",
    "FakeAnthropic",
    "FakeGemini",
    "FakeOpenAI",
    "FakeServer",
    "Fault",
    "RecordedRequest",
    "echo",
]
