"""Calls to the real provider APIs: run with `pytest --live` and keys in the environment.

Skipped by default (and in CI): these cost money and need the internet.
"""

from __future__ import annotations

import os

import pytest

from orchestra import Orchestra, TrackingSettings

pytestmark = pytest.mark.live

CASES = {  # the models of config.live.yaml
    "openai": ("OPENAI_API_KEY", "gpt-6-luna"),
    "anthropic": ("ANTHROPIC_API_KEY", "claude-haiku-5-5"),
    "google": ("GOOGLE_API_KEY", "gemini-3.8-flash"),
}


@pytest.mark.parametrize("provider", list(CASES))
async def test_live_round_trip(provider, tmp_path):
    variable, model = CASES[provider]
    if not os.environ.get(variable):
        pytest.skip(f"{variable} is not set")
    config = {
        "models": {provider: {"model": model, "max_tokens": 20}},
        "routing": {"rules": [{"providers": [provider]}]},
    }
    tracking = TrackingSettings(
        tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        artifact_location=str(tmp_path / "a"),
        spool_dir=str(tmp_path / "s"),
    )
    orch = Orchestra(config, tracking=tracking)
    try:
        result = await orch.process_request("Reply with the single word: pong", user_id="live-test")
        assert "pong" in result["response"].lower()
        assert result["metadata"]["tokens"]["input"] > 0 and result["metadata"]["cost_usd"] > 0
        stream = await orch.process_request_stream("Count from 1 to 5.", user_id="live-test")
        assert (await stream.collect())["response"]
    finally:
        await orch.aclose()
