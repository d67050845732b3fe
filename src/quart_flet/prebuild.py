"""Deprecated name of :mod:`quart_flet.cli.prebuild` (``quart-flet prebuild``
is the same): ``python -m quart_flet.prebuild`` still works, with a warning."""

import sys
import warnings

from quart_flet.cli.prebuild import main

__all__ = ["main"]

warnings.warn(
    "quart_flet.prebuild is now quart_flet.cli.prebuild (or run: quart-flet prebuild)",
    DeprecationWarning,
    stacklevel=1,  # shown when run with python -m
)

if __name__ == "__main__":
    sys.exit(main(prog="python -m quart_flet.prebuild"))
