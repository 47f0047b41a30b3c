"""Checking a config without building it: what would fail when an `Orchestra` is made from it.

check_settings(settings)   # ConfigError for an unknown strategy, or a replay model not recorded

Used to validate every arm of a sweep before the first one runs. Nothing is built that costs:
no provider client, no dataset beyond the model column of a parquet file.
"""

from __future__ import annotations

from orchestra.config.schema import Settings
from orchestra.consensus.manager import ConsensusManager
from orchestra.errors import ConfigError
from orchestra.providers.recorded import recorded_models
from orchestra.providers.replay import missing_model_message
from orchestra.routing.router import TaskRouter
from orchestra.types import ModelProvider


def check_settings(settings: Settings) -> None:
    """Raise the `ConfigError` building an `Orchestra` from `settings` would raise, when it can
    be found cheaply: routing and consensus strategies, replay models and their datasets."""
    TaskRouter(settings.routing, provider_names=lambda: list(settings.models))
    ConsensusManager(settings.consensus, settings.resolve_path).check_configured()
    for name, provider in settings.models.items():
        model = provider.default_model
        if provider.type != ModelProvider.REPLAY or provider.dataset is None or model is None:
            continue
        dataset = settings.datasets[provider.dataset]
        path = settings.resolve_path(dataset.path)
        if not path.is_file():
            raise ConfigError(f"datasets.{provider.dataset}.path: {str(path)!r} does not exist")
        models = recorded_models(dataset, path)
        if models is not None and model not in models:
            raise ConfigError(missing_model_message(name, model, provider.dataset, sorted(models)))
