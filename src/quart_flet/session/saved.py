"""State a session carries across a restart of the server (issue 25).

A restart ends every session. With an ``on_session_save(page)`` hook, each
session's page is asked for what the app wants kept, when the server begins
to stop (before its sockets close with 1012 or 1001): a dict of JSON values,
at most :data:`MAX_SAVED_BYTES`. It is kept for ``session_timeout_seconds``
under the browser and the signed-in identity that owned the session. The
next session of that browser and identity (the page reconnecting to the new
server) takes it, once: its items are in ``page.session.store`` before
``on_session_start`` and ``main`` run, and its route is the saved one when
the browser asks for the root.

Where it is kept: in Redis when the app's Flet apps use ``redis_url`` (it
survives moving to another process or host), else in files in a private
directory of this user on this host, named after the Quart app (a restart on
the same host finds it). Values are JSON, never pickles; with a secret key
they are signed, and an entry whose signature fails is dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from quart_flet.backends import OAuthStateStore
from quart_flet.mount import FletMount
from quart_flet.session.handshake import Owner

__all__ = ["MAX_SAVED_BYTES", "SavedStates", "saved_dir"]

logger = logging.getLogger("quart_flet")

#: the most bytes of JSON one session may keep across a restart
MAX_SAVED_BYTES = 64 * 1024


def saved_dir(import_name: str, root_path: str) -> Path:
    """The private directory a Quart app's saved states live in without
    Redis: one per app (its import name and folder), per user."""
    digest = hashlib.sha256(f"{import_name}\0{root_path}".encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"quart-flet-{os.getuid()}" / f"saved-{digest}"


class SavedStates:
    """Saved states, by Flet app, browser and identity, in ``store``."""

    def __init__(self, store: OAuthStateStore, secret: str | bytes | None) -> None:
        self.store = store
        self.signer = (
            URLSafeSerializer(secret, salt="quart-flet saved session state") if secret else None
        )

    @staticmethod
    def _key(mount: FletMount, owner: Owner) -> str | None:
        if not owner.browser:  # no browser id: no way to know its next session
            return None
        digest = hashlib.sha256(f"{owner.browser}\0{owner.identity}".encode()).hexdigest()
        return f"saved:{mount.name}:{digest}"

    def encode(self, mount: FletMount, route: str, data: Any) -> str | None:
        """The stored form of ``data`` (and the page's route), or None with a
        warning when it is not a dict of JSON values or too big."""
        if not isinstance(data, dict):
            logger.warning(
                "on_session_save of Flet app %r returned %s, not a dict: nothing saved",
                mount.name,
                type(data).__name__,
            )
            return None
        try:
            text = json.dumps({"route": route, "store": data}, allow_nan=False)
        except (TypeError, ValueError) as error:
            logger.warning(
                "on_session_save of Flet app %r returned what JSON cannot hold (%s): nothing saved",
                mount.name,
                error,
            )
            return None
        if len(text.encode()) > MAX_SAVED_BYTES:
            logger.warning(
                "on_session_save of Flet app %r returned %d bytes of JSON, over the %d a "
                "session may keep: nothing saved",
                mount.name,
                len(text.encode()),
                MAX_SAVED_BYTES,
            )
            return None
        return self.signer.dumps(text) if self.signer else text

    async def put(self, mount: FletMount, owner: Owner, text: str) -> bool:
        key = self._key(mount, owner)
        if key is None:
            return False
        await self.store.put(key, text, mount.options.session_timeout_seconds)
        return True

    async def take(self, mount: FletMount, owner: Owner) -> tuple[str, dict[str, Any]] | None:
        """(route, store items) saved for ``owner``'s last session, once."""
        key = self._key(mount, owner)
        raw = None if key is None else await self.store.take(key)
        if raw is None:
            return None
        try:
            text = self.signer.loads(raw) if self.signer else raw
            saved = json.loads(text)
            route, store = saved["route"], saved["store"]
        except (BadSignature, ValueError, TypeError, KeyError):
            logger.warning(
                "a saved state of Flet app %r was dropped: not ours, or saved with "
                "another secret key",
                mount.name,
            )
            return None
        if not isinstance(route, str) or not isinstance(store, dict):
            return None
        return route, store
