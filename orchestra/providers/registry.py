"""Which connector serves which provider name, and how connectors are built from config.

orch.model_registry.register_connector("echo", FunctionConnector("echo"))
orch.model_registry.get("echo")
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from orchestra.config.schema import ProviderSettings, Settings
from orchestra.entrypoints import discover
from orchestra.errors import ConfigError, ModelProviderNotFound
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.pricing import Price, PriceTable
from orchestra.providers.recorded import ReplayDataset
from orchestra.types import ModelProvider


def load_dataset(settings: Settings, name: str) -> ReplayDataset:
    """The recorded dataset `datasets.<name>` of `settings` (its path resolved against the config)."""
    dataset_settings = settings.datasets[name]
    return ReplayDataset.from_settings(dataset_settings, settings.resolve_path(dataset_settings.path), name)


@dataclass
class BuildContext:
    """What a connector factory may need: settings, prices and datasets loaded once."""

    settings: Settings
    prices: PriceTable
    datasets: dict[str, ReplayDataset] = field(default_factory=dict)

    def dataset(self, name: str) -> ReplayDataset:
        if name not in self.datasets:
            self.datasets[name] = load_dataset(self.settings, name)
        return self.datasets[name]

    def price(self, provider: ProviderSettings, model: str) -> Price | None:
        """The provider's own price, else the table's: a replay's on the day its data was recorded."""
        if provider.price is not None:
            return Price(model=model, **provider.price.model_dump(), source="config")
        dataset = self.settings.datasets.get(provider.dataset) if provider.dataset else None
        return self.prices.lookup(model, on=dataset.recorded_on if dataset else None)


ConnectorFactory = Callable[[str, ProviderSettings, BuildContext], BaseModelConnector]

CONNECTORS_GROUP = "orchestra.connectors"
"""The entry-point group of connector factories (`models.<name>.plugin` names one)."""

CONNECTOR_FACTORIES: dict[ModelProvider, str] = {
    ModelProvider.REPLAY: "orchestra.providers.replay:build_replay",
    ModelProvider.OPENAI: "orchestra.providers.openai_format:build_openai",
    ModelProvider.OPENAI_COMPATIBLE: "orchestra.providers.openai_format:build_openai",
    ModelProvider.ANTHROPIC: "orchestra.providers.anthropic:build_anthropic",
    ModelProvider.GOOGLE: "orchestra.providers.google:build_gemini",
}
"""Provider type -> "module:function" building its connector; imported only when used."""


def build_connector(name: str, provider: ProviderSettings, context: BuildContext) -> BaseModelConnector:
    """The connector for `models.<name>` in config."""
    assert provider.type is not None  # filled in by Settings validation
    if provider.plugin is not None:
        return _plugin_connector(name, provider, context)
    target = CONNECTOR_FACTORIES.get(provider.type)
    if target is None:
        raise ConfigError(
            f"models.{name}: providers of type {provider.type.value!r} cannot be built from "
            f"config here (buildable: {', '.join(t.value for t in CONNECTOR_FACTORIES)}); "
            "register a connector in code with model_registry.register_connector, or name an "
            "installed connector plugin with plugin: <entry point>"
        )
    module_name, function_name = target.split(":")
    factory: ConnectorFactory = getattr(importlib.import_module(module_name), function_name)
    return factory(name, provider, context)


def _plugin_connector(name: str, provider: ProviderSettings, context: BuildContext) -> BaseModelConnector:
    found, errors = discover(CONNECTORS_GROUP, instantiate=False)
    broken = {error.name: error.error for error in errors}
    if provider.plugin in broken:
        raise ConfigError(f"models.{name}.plugin {provider.plugin!r} is broken: {broken[provider.plugin]}")
    if provider.plugin not in found:
        available = ", ".join(sorted(found)) or "none installed"
        raise ConfigError(f"models.{name}.plugin is {provider.plugin!r}; connector plugins: {available}")
    connector = found[provider.plugin](name, provider, context)
    if not isinstance(connector, BaseModelConnector):
        raise ConfigError(
            f"models.{name}.plugin {provider.plugin!r} built a {type(connector).__name__}, "
            "not a BaseModelConnector"
        )
    return connector


class ModelRegistry:
    """Provider name -> connector, in registration order (the order failover follows)."""

    def __init__(self) -> None:
        self._connectors: dict[str, BaseModelConnector] = {}

    def register_connector(self, name: str | ModelProvider, connector: BaseModelConnector) -> None:
        """Serve provider `name` with `connector` (replacing any connector of that name)."""
        key = name.value if isinstance(name, ModelProvider) else str(name)
        if not isinstance(connector, BaseModelConnector):
            raise TypeError(f"{connector!r} is not a BaseModelConnector")
        connector.name = key
        self._connectors[key] = connector

    def unregister(self, name: str) -> BaseModelConnector | None:
        return self._connectors.pop(name, None)

    def get(self, name: str, *, request_id: str | None = None) -> BaseModelConnector:
        try:
            return self._connectors[name]
        except KeyError:
            raise ModelProviderNotFound(name, list(self._connectors), request_id=request_id) from None

    def names(self) -> list[str]:
        return list(self._connectors)

    def __contains__(self, name: object) -> bool:
        return name in self._connectors

    def __iter__(self) -> Iterator[BaseModelConnector]:
        return iter(list(self._connectors.values()))

    def __len__(self) -> int:
        return len(self._connectors)
