"""Check every configured provider: is its key set, does its endpoint answer? A table per provider.

orchestra check [--config config.live.yaml]
python -m orchestra.app.check --config config.live.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

from orchestra.config.schema import ProviderSettings
from orchestra.errors import AuthenticationFailed, OrchestraError
from orchestra.providers.credentials import DEFAULT_KEY_VARIABLES, key_variables, resolve_api_key
from orchestra.redact import SECRETS, redacted_output

CHECK_TIMEOUT_S = 15.0


@dataclass
class ConnectionStatus:
    provider: str
    kind: str
    model: str
    endpoint: str
    key: str
    ok: bool
    detail: str
    latency_ms: float | None = None
    price: str | None = None
    """Where the provider's price comes from; "unknown" when it has none, None when the connector
    does not price through a price table (a scripted one, say)."""


async def check_connections(config: str) -> list[ConnectionStatus]:
    """Validate each provider of `config` (key present, endpoint reachable and accepting it)."""
    from orchestra.engine.orchestrator import Orchestra
    from orchestra.tracking.settings import TrackingSettings

    orch = Orchestra(config, tracking=TrackingSettings(enabled=False))
    try:
        return list(await asyncio.gather(*(_check(orch, name) for name in orch.model_registry.names())))
    finally:
        await orch.aclose()


async def _check(orch, name: str) -> ConnectionStatus:
    status = await _check_connection(orch, name)
    status.price = _price_source(orch.model_registry.get(name))
    return status


def _price_source(connector) -> str | None:
    if not hasattr(connector, "price"):
        return None
    return "unknown" if connector.price is None else connector.price.source or "table"


async def _check_connection(orch, name: str) -> ConnectionStatus:
    """Whether a key is needed is the connector's to say: one without its key raises
    `AuthenticationFailed` from `validate_connection` before any network call."""
    provider = orch.settings.models.get(name)
    connector = orch.model_registry.get(name)
    kind = connector.provider_type.value
    model = ", ".join(connector.get_supported_models())
    endpoint = getattr(connector, "base_url", None) or ("recorded data" if kind == "replay" else "default")
    key = _key_source(provider)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            ok = await connector.validate_connection()
    except TimeoutError:
        return ConnectionStatus(
            name, kind, model, endpoint, key, False, f"no answer within {CHECK_TIMEOUT_S:g} s"
        )
    except OrchestraError as err:
        detail = SECRETS.redact(f"{type(err).__name__}: {err.message}")
        if key == "none" and isinstance(err, AuthenticationFailed):  # the connector wants a key
            assert provider is not None
            key = "missing"
            if variables := key_variables(provider):
                detail = "set " + " or ".join(variables)
        return ConnectionStatus(name, kind, model, endpoint, key, False, detail)
    latency = (time.perf_counter() - started) * 1000.0
    if key == "none":
        key = "none (not required)"
    return ConnectionStatus(
        name, kind, model, endpoint, key, ok, "ok" if ok else "validation failed", latency
    )


def _key_source(provider: ProviderSettings | None) -> str:
    """Where the provider's key comes from ("config", or the environment variable that holds
    it), "none" for a provider type that takes a key but has none, "-" for the others."""
    if provider is None:
        return "-"
    _, source = resolve_api_key(provider)
    if source is not None:
        return f"{source} (set)"
    return "none" if provider.type in DEFAULT_KEY_VARIABLES else "-"


def render(statuses: list[ConnectionStatus]) -> str:
    headers = ["provider", "type", "model", "endpoint", "key", "status", "latency"]
    rows = [
        [
            s.provider,
            s.kind,
            s.model,
            s.endpoint,
            s.key,
            ("OK" if s.ok else "FAIL: " + s.detail),
            "" if s.latency_ms is None else f"{s.latency_ms:.0f} ms",
        ]
        for s in statuses
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) for row in rows]
    lines += price_warnings(statuses)
    return SECRETS.redact("\n".join(lines))


def price_warnings(statuses: list[ConnectionStatus]) -> list[str]:
    """One line per provider whose model has no known price (its calls would be logged at $0
    and no budget could stop them)."""
    return [
        f"warning: models.{s.provider} ({s.model}) has no known price: its calls are logged at $0 "
        f"and budgets cannot limit them; set models.{s.provider}.price or pricing.overrides"
        for s in statuses
        if s.price == "unknown"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    args = parser.parse_args(argv)
    with redacted_output():
        try:
            statuses = asyncio.run(check_connections(args.config))
        except OrchestraError as err:
            print(f"orchestra check: {err}", file=sys.stderr)
            return 2
        print(render(statuses))
    return 0 if all(s.ok for s in statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main())
