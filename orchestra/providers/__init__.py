"""Providers: one module per provider type, all behind `BaseModelConnector`."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.providers.base import BaseModelConnector
    from orchestra.providers.function import FunctionConnector
    from orchestra.providers.pricing import Price, PriceTable
    from orchestra.providers.recorded import RecordedAnswer, ReplayDataset
    from orchestra.providers.registry import ModelRegistry
    from orchestra.providers.replay import LatencyProfile, ReplayConnector
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.providers.base": ["BaseModelConnector"],
            "orchestra.providers.function": ["FunctionConnector"],
            "orchestra.providers.pricing": ["Price", "PriceTable"],
            "orchestra.providers.recorded": ["RecordedAnswer", "ReplayDataset"],
            "orchestra.providers.registry": ["ModelRegistry"],
            "orchestra.providers.replay": ["LatencyProfile", "ReplayConnector"],
        },
    )

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
