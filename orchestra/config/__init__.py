"""Configuration: `config.yaml` as typed settings."""

from orchestra.config.loader import load_settings, settings_from_dict
from orchestra.config.schema import (
    ConsensusSettings,
    DatasetSettings,
    ProviderSettings,
    RoutingRule,
    RoutingSettings,
    Settings,
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
