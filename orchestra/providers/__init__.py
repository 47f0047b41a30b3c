"""Providers: one module per provider type, all behind `BaseModelConnector`."""

from orchestra.providers.base import BaseModelConnector
from orchestra.providers.function import FunctionConnector
from orchestra.providers.pricing import Price, PriceTable
from orchestra.providers.recorded import RecordedAnswer, ReplayDataset
from orchestra.providers.registry import ModelRegistry
from orchestra.providers.replay import LatencyProfile, ReplayConnector

__all__ = [
    "BaseModelConnector",
    "FunctionConnector",
    "LatencyProfile",
    "ModelRegistry",
    "Price",
    "PriceTable",
    "RecordedAnswer",
    "ReplayConnector",
    "ReplayDataset",
]
