"""Configuration: `config.yaml` as typed settings."""

from typing import TYPE_CHECKING

from orchestra.lazy import lazy_exports

if TYPE_CHECKING:
    from orchestra.config.loader import load_settings, settings_from_dict
    from orchestra.config.schema import (
        ConsensusSettings,
        DatasetSettings,
        ProviderSettings,
        RoutingRule,
        RoutingSettings,
        Settings,
    )
else:  # names load on first use (PEP 562)
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "orchestra.config.loader": ["load_settings", "settings_from_dict"],
            "orchestra.config.schema": [
                "ConsensusSettings",
                "DatasetSettings",
                "ProviderSettings",
                "RoutingRule",
                "RoutingSettings",
                "Settings",
            ],
        },
    )

__all__ = [
    "ConsensusSettings",
    "DatasetSettings",
    "ProviderSettings",
    "RoutingRule",
    "RoutingSettings",
    "Settings",
    "load_settings",
    "settings_from_dict",
]
