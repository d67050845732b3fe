"""Deprecated name of :mod:`quart_flet.testing.plugin`, kept for conftests
that list it in ``pytest_plugins``.

The plugin loads by itself once quart-flet is installed (its ``pytest11``
entry point), so this module only warns; name ``quart_flet.testing.plugin``
instead (or nothing at all).
"""

import warnings

warnings.warn(
    "quart_flet.pytest_plugin is now quart_flet.testing.plugin (it loads by itself when "
    "quart-flet is installed: remove it from pytest_plugins)",
    DeprecationWarning,
    stacklevel=2,
)
