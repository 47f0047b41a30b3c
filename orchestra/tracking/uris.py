"""Tracking URIs: which schemes are stores, and how a URI is shown without its password.

    masked_uri("postgresql://bob:hunter22@db/mlflow")   # "postgresql://bob:***@db/mlflow"
    check_scheme("ftp://host/x")                        # ValueError naming the allowed schemes

Every log line and error that names a tracking URI goes through `masked_uri`; the password is
also registered with `SECRETS` (`register_uri_secret`) so that a driver's own message is masked.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from urllib.parse import urlsplit, urlunsplit

from orchestra.redact import SECRETS

MASK = "***"
STORE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "file", "http", "https")
"""Schemes MLflow stores are reached by (SQL ones may name a driver: `postgresql+psycopg2`)."""
_DATABRICKS = ("databricks", "databricks-uc", "uc")
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def masked_uri(uri: str) -> str:
    """`uri` with its password (if any) replaced by `***`."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def mask_uris_in(text: str) -> str:
    """Every URI inside `text` shown by `masked_uri` (for messages of drivers and MLflow)."""
    return _URI_IN_TEXT.sub(lambda match: masked_uri(match.group(0)), text)


def register_uri_secret(uri: str) -> None:
    """Register the URI's password with `SECRETS`, so it is masked wherever text leaves."""
    try:
        password = urlsplit(uri).password
    except ValueError:
        return
    if password:
        SECRETS.register(password)


def check_scheme(uri: str) -> None:
    """Raise ValueError unless `uri` is a path or names a scheme MLflow can store runs in."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if not re.fullmatch(r"[a-z][a-z0-9+.\-]+", scheme):
        return  # a local path (a Windows drive letter is not a scheme)
    base = scheme.split("+", 1)[0]
    if base in STORE_SCHEMES or scheme in _DATABRICKS or scheme in _plugin_schemes():
        return
    allowed = ", ".join([*STORE_SCHEMES, *_DATABRICKS])
    raise ValueError(
        f"unsupported tracking URI scheme {scheme!r} in {masked_uri(uri)!r} "
        f"(allowed: {allowed}, a local path, or a scheme an installed MLflow plugin registers)"
    )


def _plugin_schemes() -> set[str]:
    """Schemes registered by MLflow tracking-store plugins (entry points; MLflow is not imported)."""
    return {entry.name for entry in entry_points(group="mlflow.tracking_store")}
