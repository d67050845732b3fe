"""Where state shared between processes lives.

With no backend (the default) pubsub and pending OAuth states stay in this
process's memory. With ``redis_url`` (FLET_REDIS_URL) the Flet apps that set
it share pubsub with every process using the same Redis, and the app's OAuth
states live there too, through
:class:`quart_flet.backends.redis.RedisBackend`. The ``redis`` package is an
optional dependency (``pip install 'quart-flet[redis]'``), imported only here
and only when a URL is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from quart_flet.options import OptionError, secret_keys

if TYPE_CHECKING:
    from quart_flet.blueprint import FletMount
    from quart_flet.oauth import OAuthStateStore
    from quart_flet.pubsub import FletPubSub

__all__ = ["Backend", "backend_for"]


class Backend(Protocol):
    """Shared state for the Flet apps of one Quart app (one per registry)."""

    @property
    def oauth_states(self) -> OAuthStateStore:
        """Where pending OAuth states wait for their callback."""

    async def start(self) -> None:
        """Connect and subscribe; never raise for an unreachable server."""

    async def stop(self) -> None:
        """Send what is queued (briefly) and disconnect."""

    def attach(self, hub: FletPubSub) -> None:
        """Relay ``hub``'s sends to other processes and theirs to it, if this
        backend serves that app."""

    def publish(
        self, hub: str, except_session_id: str | None, topic: str | None, message: Any
    ) -> None:
        """Queue one pubsub send for the other processes (any thread)."""

    async def complete_oauth(self, hub: str, session_id: str, record: str) -> None:
        """Hand an OAuth callback's result to the process holding ``session_id``."""


def backend_for(config: Mapping[str, Any], mounts: Iterable[FletMount]) -> Backend | None:
    """The backend the options of ``mounts`` ask for, or None for in-memory.

    Every Flet app that sets ``redis_url`` must set the same one: the first
    one set is the app's, and a different one is an :class:`OptionError`. Each
    needs a secret key (``config`` is the Quart app's): what crosses Redis is
    signed with it.
    """
    url: str | None = None
    shared: list[FletMount] = []
    registry = None
    for mount in mounts:
        registry = mount.registry
        wanted = mount.options.redis_url
        if wanted is None:
            continue
        if url is not None and wanted != url:
            raise OptionError(
                f"quart-flet option redis_url: {_safe(wanted)} of Flet blueprint "
                f"{mount.name!r} conflicts with {_safe(url)} given by another Flet "
                "blueprint of this app (one Redis per app)"
            )
        url = wanted
        shared.append(mount)
    if url is None or registry is None:
        return None
    try:
        from quart_flet.backends.redis import RedisBackend
    except ImportError as error:
        raise OptionError(
            "quart-flet option redis_url needs the redis package: "
            f"pip install 'quart-flet[redis]' ({error})"
        ) from None
    keys = {
        mount.name: secret_keys(
            config, mount.options, "redis_url is set, and messages between processes are signed"
        )
        for mount in shared
    }
    return RedisBackend(url, keys, registry)


def _safe(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return repr(url)
    user = credentials.split(":", 1)[0]
    return repr(f"{scheme}{sep}{user}:***@{host}")
