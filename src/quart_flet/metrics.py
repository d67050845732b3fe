"""Deprecated name of :mod:`quart_flet.app.metrics`, for
``from quart_flet.metrics import FletCollector``."""

import warnings

from quart_flet.app.metrics import FletCollector

__all__ = ["FletCollector"]

warnings.warn(
    "quart_flet.metrics is now quart_flet.app.metrics",
    DeprecationWarning,
    stacklevel=2,
)
