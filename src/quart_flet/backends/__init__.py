"""Where state shared between processes lives.

With no backend (the default) pubsub and pending OAuth states stay in this
process's memory. With ``redis_url`` (FLET_REDIS_URL) the Flet apps that set
it share pubsub with every process using the same Redis, and the app's OAuth
states live there too, through
:class:`quart_flet.backends.redis.RedisBackend`. The ``redis`` package is an
optional dependency (``pip install 'quart-flet[redis]'``), imported only here
and only when a URL is set. It imports the root modules and ``runtime``
(the pubsub hub a backend feeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart_flet.backends.base import (
    Backend,
    MemoryOAuthStateStore,
    OAuthHandler,
    OAuthStateStore,
    safe_url,
)
from quart_flet.options import FletOptions, OptionError, secret_keys

__all__ = ["Backend", "MemoryOAuthStateStore", "OAuthStateStore", "backend_for"]


def backend_for(
    config: Mapping[str, Any], apps: Mapping[str, FletOptions], on_oauth: OAuthHandler
) -> Backend | None:
    """The backend the options of ``apps`` (each Flet app's, by name) ask
    for, or None for in-memory.

    Every Flet app that sets ``redis_url`` must set the same one: the first
    one set is the app's, and a different one is an :class:`OptionError`. Each
    needs a secret key (``config`` is the Quart app's): what crosses Redis is
    signed with it. ``on_oauth`` takes the OAuth results other processes hand
    to this one.
    """
    url: str | None = None
    shared: list[str] = []
    for name, options in apps.items():
        wanted = options.redis_url
        if wanted is None:
            continue
        if url is not None and wanted != url:
            raise OptionError(
                f"quart-flet option redis_url: {safe_url(wanted)} of Flet blueprint "
                f"{name!r} conflicts with {safe_url(url)} given by another Flet "
                "blueprint of this app (one Redis per app)"
            )
        url = wanted
        shared.append(name)
    if url is None:
        return None
    try:
        from quart_flet.backends.redis import RedisBackend
    except ImportError as error:
        raise OptionError(
            "quart-flet option redis_url needs the redis package: "
            f"pip install 'quart-flet[redis]' ({error})"
        ) from None
    keys = {
        name: secret_keys(
            config, apps[name], "redis_url is set, and messages between processes are signed"
        )
        for name in shared
    }
    return RedisBackend(url, keys, on_oauth)
