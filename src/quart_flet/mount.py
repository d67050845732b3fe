"""One Flet app at one place in one Quart app: its code, its resolved options,
the endpoints of the routes that serve it and its web client's files.

Every block (the web client, the WebSocket, the upload PUT, the OAuth
callback) works on a mount; the registry keeps them by name, with each one's
web client files. It is a root module: it knows nothing of sessions,
connections or the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from quart import url_for

from quart_flet.options import FletOptions
from quart_flet.types import AppCallable

__all__ = ["DrainHook", "FletMount", "FletRoutes", "SessionEndReason", "path_for"]


class SessionEndReason(StrEnum):
    """Why a Flet session ended, as ``on_session_end(page, reason)`` hears it."""

    #: ended for good by the server: its browser came back signed in as
    #: someone else (or signed out), or its sign-in could not be completed
    CLOSED = "closed"
    #: its browser went away and did not come back within session_timeout_seconds
    EXPIRED = "expired"
    #: its browser went away, and more of the app's sessions were held than
    #: max_held_sessions: the longest-disconnected end first
    EVICTED = "evicted"
    #: the server stopped
    SHUTDOWN = "shutdown"
    #: main, before_main or one of the session's tasks raised (the page showed
    #: the error), and the session then ended
    CRASHED = "crashed"


#: ``on_session_end(page, reason)``: sync (run in the pool) or async
SessionEndHook = Callable[[Any, SessionEndReason], Any]
#: ``on_drain(page, seconds_left)``: sync (run in the pool) or async
DrainHook = Callable[[Any, float], Any]
#: ``on_session_save(page) -> dict | None``: what a session carries across a
#: restart (quart_flet.session.saved); sync (run in the pool) or async
SaveHook = Callable[[Any], Any]


@dataclass(frozen=True)
class FletRoutes:
    """The endpoints (names given to ``app.route``/``url_for``) of the routes
    that serve one Flet app. The URLs handed to the browser are built from
    them: the web client's base, the WebSocket, upload and callback URLs.

    ``index`` must build without arguments: give the catch-all route
    ``defaults={"path": ""}`` under the same endpoint. ``upload`` and
    ``oauth_callback`` are None when the app has no such route.
    """

    index: str
    websocket: str
    upload: str | None = None
    oauth_callback: str | None = None

    @classmethod
    def of_blueprint(cls, name: str) -> FletRoutes:
        """The endpoints flet_blueprint() gives its routes."""
        return cls(f"{name}.index", f"{name}.websocket", f"{name}.upload", f"{name}.oauth_callback")


def path_for(endpoint: str) -> str:
    """The path of ``url_for(endpoint)`` (with the app's root path). A route
    of the other kind than the current request's (a WebSocket's URL from an
    HTTP request) is built absolute, ws://host/...; the browser resolves a
    path against its page, which keeps it right behind proxies too."""
    return urlsplit(url_for(endpoint)).path


@dataclass
class FletMount:
    """One Flet app registered on one Quart app: what its blocks share."""

    name: str
    main: AppCallable
    before_main: AppCallable | None
    options: FletOptions
    routes: FletRoutes
    on_session_start: AppCallable | None = None
    on_session_end: SessionEndHook | None = None
    on_drain: DrainHook | None = None
    on_session_save: SaveHook | None = None
