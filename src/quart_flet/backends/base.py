"""What every backend is (:class:`Backend`), the OAuth state stores'
shape and the in-memory store: the part of quart_flet.backends that the
backends themselves import."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from quart_flet.runtime.pubsub import FletPubSub, Publication

__all__ = ["Backend", "MemoryOAuthStateStore", "OAuthHandler", "OAuthStateStore", "safe_url"]

#: ``on_oauth(app name, record)``: an OAuth callback's result, which another
#: process received, for a session of this one
OAuthHandler = Callable[[str, str], None]


class OAuthStateStore(Protocol):
    """Where pending OAuth states wait for their callback. Values are opaque
    strings; ``take`` returns a value at most once, and never after its ttl."""

    async def put(self, key: str, value: str, ttl: float) -> None: ...

    async def take(self, key: str) -> str | None: ...


class MemoryOAuthStateStore:
    """The store of one process (the default; see backends for more)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, str]] = {}

    async def put(self, key: str, value: str, ttl: float) -> None:
        now = self._clock()
        # oldest first: drop the expired head so abandoned sign-ins do not pile up
        for old in list(self._items):
            if self._items[old][0] > now:
                break
            del self._items[old]
        self._items.pop(key, None)
        self._items[key] = (now + ttl, value)

    async def take(self, key: str) -> str | None:
        item = self._items.pop(key, None)
        if item is None or item[0] <= self._clock():
            return None
        return item[1]


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
    ) -> Publication:
        """Queue one pubsub send for the other processes (any thread); the
        future fails with PubSubNotPublished if they will not get it."""

    async def complete_oauth(self, hub: str, session_id: str, record: str) -> None:
        """Hand an OAuth callback's result to the process holding ``session_id``."""


def safe_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return repr(url)
    user = credentials.split(":", 1)[0]
    return repr(f"{scheme}{sep}{user}:***@{host}")
