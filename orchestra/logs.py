"""Logging through the standard `logging` module, with API keys masked in every message.

configure_logging("DEBUG")   # orchestra's loggers print to stderr, secrets redacted
"""

from __future__ import annotations

import logging

from orchestra.tracking.redact import RedactingFilter

_HANDLER_NAME = "orchestra-redacting-handler"


def configure_logging(level: str | int | None) -> None:
    """Send the `orchestra` loggers to stderr at `level`; None leaves logging untouched."""
    logger = logging.getLogger("orchestra")
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    if level is None:
        return
    logger.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
