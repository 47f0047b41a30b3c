"""Logging through the standard `logging` module, with API keys masked in every message.

logger = get_logger("orchestra.routing")   # every orchestra module logs through one of these
configure_logging("DEBUG")                 # orchestra's loggers print to stderr, secrets redacted
"""

from __future__ import annotations

import functools
import logging

from orchestra.redact import RedactingFilter

_HANDLER_NAME = "orchestra-redacting-handler"


def get_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with API keys masked in its records, whichever handler prints
    them: a filter on the parent `orchestra` logger never sees its children's records."""
    logger = logging.getLogger(name)
    logger.addFilter(_redacting_filter())  # adding the same filter again is a no-op
    return logger


@functools.cache
def _redacting_filter() -> logging.Filter:
    return RedactingFilter()


def configure_logging(level: str | int | None) -> None:
    """Send the `orchestra` loggers to stderr at `level`; None leaves logging untouched."""
    logger = get_logger("orchestra")
    if level is None:
        return
    logger.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(_redacting_filter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
