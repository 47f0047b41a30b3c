"""What the benchmark scripts share: the recorded AlpacaEval data and the shipped offline config.

from alpaca import ALL, DATA, ROOT, STRONG, offline_config
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "alpacaeval" / "responses.parquet"
STRONG = ["gpt4", "claude-2.1", "gemini-pro"]
"""Recorded model names (as in the parquet file) of the three strong models, then all seven."""
ALL = [
    *STRONG,
    "gpt-3.5-turbo-0301",
    "Mixtral-8x7B-Instruct-v0.1",
    "Mistral-7B-Instruct-v0.2",
    "llama-2-70b-chat-hf",
]


def offline_config(routing: dict[str, Any] | None = None) -> dict[str, Any]:
    """`config.yaml` as a dict with absolute data paths, `routing` (if given) replacing its routing."""
    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    for dataset in raw["datasets"].values():
        dataset["path"] = str(ROOT / dataset["path"])
    if routing is not None:
        raw["routing"] = routing
    return raw
