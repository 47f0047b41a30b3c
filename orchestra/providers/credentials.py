"""Where a provider's API key comes from: config, the named environment variable, or the default one.

api_key, variable = resolve_api_key("openai", settings)   # ("sk-...", "OPENAI_API_KEY")
"""

from __future__ import annotations

import os

from orchestra.config.schema import ProviderSettings
from orchestra.errors import AuthenticationFailed
from orchestra.redact import SECRETS
from orchestra.types import ModelProvider

DEFAULT_KEY_VARIABLES: dict[ModelProvider, tuple[str, ...]] = {
    ModelProvider.OPENAI: ("OPENAI_API_KEY",),
    ModelProvider.ANTHROPIC: ("ANTHROPIC_API_KEY",),
    ModelProvider.GOOGLE: ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    ModelProvider.OPENAI_COMPATIBLE: (),
}


def key_variables(provider: ProviderSettings) -> tuple[str, ...]:
    """The environment variables that may hold this provider's key, in lookup order."""
    if provider.api_key_env:
        return (provider.api_key_env,)
    assert provider.type is not None
    return DEFAULT_KEY_VARIABLES.get(provider.type, ())


def resolve_api_key(provider: ProviderSettings) -> tuple[str | None, str | None]:
    """(key, where it came from); the key is registered for redaction everywhere."""
    if provider.api_key is not None:
        key = provider.api_key.get_secret_value()
        SECRETS.register(key)
        return key, "config"
    for variable in key_variables(provider):
        if os.environ.get(variable):
            SECRETS.register(os.environ[variable])
            return os.environ[variable], variable
    return None, None


def missing_key_error(name: str, provider: ProviderSettings) -> AuthenticationFailed:
    variables = key_variables(provider)
    hint = " or ".join(variables) if variables else f"models.{name}.api_key_env"
    return AuthenticationFailed(
        f"no API key configured: set the environment variable {hint} (or models.{name}.api_key)",
        provider=name,
    )
