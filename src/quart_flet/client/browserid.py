"""The browser id: a random value with no meaning in an HttpOnly cookie,
``flet_browser``, that binds a Flet session to the browser that started it,
so a session id alone never resumes it. The registry keeps only its digest.

Why and how: docs/discussion/sessions.md, "The browser id".
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.http import dump_cookie

__all__ = ["COOKIE", "cookie_path", "digest", "new_id", "set_cookie_header"]

COOKIE = "flet_browser"


def new_id() -> str:
    """A fresh browser id: 256 random bits."""
    return secrets.token_urlsafe(32)


def digest(text: str) -> str:
    """What the registry keeps of a browser id (or of an auth_id)."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def digests(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(digest(value) for value in ids)


def cookie_path(base: str, websocket_path: str) -> str:
    """The path a cookie of the app needs to reach both its index (``base``,
    '/root/prefix/') and its WebSocket: the directory they share, '/flet-app/'
    for a blueprint, '/' for an index at /hello/ and a WebSocket at /sockets/hello."""
    shared: list[str] = []
    for mine, theirs in zip(base.split("/")[1:-1], websocket_path.split("/")[1:-1], strict=False):
        if mine != theirs:
            break
        shared.append(mine)
    return "/" + "".join(f"{segment}/" for segment in shared)


def set_cookie_header(value: str, path: str, secure: bool) -> str:
    """The ``Set-Cookie`` value that gives a browser ``value`` as its id: for
    the browser's session (no Max-Age: nothing to track it by afterwards),
    HttpOnly, SameSite=Lax, Secure over https, scoped to ``path``."""
    return dump_cookie(COOKIE, value, path=path, httponly=True, samesite="Lax", secure=secure)


def accepts_headers(scope: Mapping[str, Any]) -> bool:
    """Whether the ASGI server sends headers with a WebSocket's accept (ASGI
    spec 2.1+: Hypercorn, uvicorn, Granian; not Daphne)."""
    version = str(scope.get("asgi", {}).get("spec_version", "2.0"))
    return tuple(int(part) for part in version.split(".") if part.isdigit()) > (2, 0)
