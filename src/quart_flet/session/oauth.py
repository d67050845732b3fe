"""OAuth sign-in for ``page.login()``: pending states behind a tiny async
store, the callback route, and handing the result to the session that started.

``page.login()`` stores ``{state -> session}`` (:func:`store_state`) and opens the
provider; the provider redirects the browser to the callback (:func:`callback`),
which takes the state once. Without ``redirect_to_page`` the callback completes
the sign-in in the session (token exchange, ``on_login``) and renders an HTML
page; with it, it stores the result under a fresh id, sets that id in the
``flet_oauth_state`` cookie and redirects to the page, whose new WebSocket
picks the session and the result up (:func:`take_session`, :func:`complete`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import weakref
from dataclasses import asdict, dataclass
from typing import Any

from quart import Response, ResponseReturnValue, current_app, redirect, request
from quart_schema import document_querystring, document_response
from quart_schema.conversion import model_load

from quart_flet.backends import MemoryOAuthStateStore, OAuthStateStore
from quart_flet.client import browserid
from quart_flet.compat.flet import authorize_callback, set_context_page
from quart_flet.errors import ErrorBody, json_error, validation_summary
from quart_flet.mount import FletMount, path_for
from quart_flet.runtime.loopsafe import LoopSafeSession
from quart_flet.session.handshake import ClientInfo
from quart_flet.session.registry import FletRegistry, Peer
from quart_flet.types import ViewT

__all__ = ["MemoryOAuthStateStore", "OAuthState", "OAuthStateStore", "callback", "deliver"]

logger = logging.getLogger("quart_flet")

COOKIE = "flet_oauth_state"

DEFAULT_COMPLETE_PAGE = """<!DOCTYPE html>
<html>
<head><title>Signed in successfully</title></head>
<body>
<script type="text/javascript">window.close();</script>
<p>You've been successfully signed in! You can close this tab or window now.</p>
</body>
</html>
"""


@dataclass
class OAuthState:
    """One sign-in between ``page.login()`` and its completion."""

    session_id: str
    state: str
    complete_page_url: str | None = None
    complete_page_html: str | None = None
    code: str | None = None
    error: str | None = None
    error_description: str | None = None

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> OAuthState:
        return cls(**json.loads(text))


@dataclass
class CallbackQuery:
    """Query the OAuth provider sends to the callback (RFC 6749 4.1.2)."""

    state: str
    code: str | None = None
    error: str | None = None
    error_description: str | None = None


# puts still in flight, awaited by a callback that races them (another store
# than memory answers later); keyed by the store key, which names the mount
_pending: dict[str, asyncio.Task[None]] = {}
# the result a redirect-flow WebSocket picked up, until complete() delivers it
_completions: weakref.WeakKeyDictionary[Peer, OAuthState] = weakref.WeakKeyDictionary()


def _state_key(mount: FletMount, state: str) -> str:
    return f"{mount.name}:state:{state}"


def _done_key(mount: FletMount, token: str) -> str:
    return f"{mount.name}:done:{token}"


def store_state(
    mount: FletMount, registry: FletRegistry, session: LoopSafeSession, attrs: dict[str, Any]
) -> None:
    """``page.login()`` started: remember which session waits for ``state``."""
    record = OAuthState(
        session_id=session.id,
        state=str(attrs["state"]),
        complete_page_url=attrs.get("completePageUrl"),
        complete_page_html=attrs.get("completePageHtml"),
    )
    key = _state_key(mount, record.state)
    put = registry.oauth_states.put(key, record.dumps(), mount.options.oauth_state_timeout_seconds)
    loop = registry.loop
    assert loop is not None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _track(registry, key, put)
    else:  # page.login() driven from a worker thread
        loop.call_soon_threadsafe(_track, registry, key, put)


def _track(registry: FletRegistry, key: str, put: Any) -> None:
    task = registry.spawn(put)
    _pending[key] = task
    task.add_done_callback(lambda _: _pending.pop(key, None))


def document(view: ViewT) -> ViewT:
    """OpenAPI for the callback route (used by QuartSchema when the app has it)."""
    view = document_querystring(CallbackQuery)(view)
    for status in (400, 410):
        view = document_response(ErrorBody, status)(view)
    return view


async def callback(mount: FletMount, registry: FletRegistry) -> ResponseReturnValue:
    """The provider redirected the browser here with ``state`` and ``code`` (or ``error``)."""
    args = {key: request.args[key] for key in request.args}
    try:
        query = model_load(
            args,
            CallbackQuery,
            ValueError,
            preference=current_app.config.get("QUART_SCHEMA_CONVERSION_PREFERENCE"),
        )
    except ValueError as error:
        return json_error(
            400,
            "malformed OAuth callback: needs state, and code or error: "
            + validation_summary(error),
        )
    key = _state_key(mount, query.state)
    if key in _pending:
        await asyncio.shield(_pending[key])
    store, ttl = registry.oauth_states, mount.options.oauth_state_timeout_seconds
    raw = await store.take(key)
    if raw is None:
        return json_error(
            400,
            "unknown or expired OAuth state: the sign-in took longer than "
            f"{ttl:g} seconds or this link was used already; sign in again",
        )
    record = OAuthState.loads(raw)
    record.code, record.error = query.code, query.error
    record.error_description = query.error_description

    if record.complete_page_url:
        token = secrets.token_urlsafe(32)
        await store.put(_done_key(mount, token), record.dumps(), ttl)
        redirection = redirect(record.complete_page_url, 302)
        redirection.set_cookie(
            COOKIE,
            token,
            max_age=int(ttl),
            path=browserid.cookie_path(
                path_for(mount.routes.index), path_for(mount.routes.websocket)
            ),  # the page's WebSocket brings it back
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
        redirection.headers["Cache-Control"] = "no-store"
        return redirection

    entry = registry.sessions.get((mount.name, record.session_id))
    backend = registry.backend
    if entry is not None:
        await authorize(entry.session, record)
    elif backend is not None:
        # the session lives in another worker: hand the result to it through Redis
        try:
            await backend.complete_oauth(mount.name, record.session_id, record.dumps())
        except Exception:
            return json_error(503, "could not reach the worker of this sign-in; sign in again")
    else:
        return json_error(
            410,
            "the Flet session that started this sign-in has ended (or it lives in another "
            "process: use sticky sessions or redis_url); sign in again",
        )
    html = record.complete_page_html or DEFAULT_COMPLETE_PAGE
    response = Response(html, 200, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


async def authorize(session: LoopSafeSession, record: OAuthState) -> None:
    """Exchange the code for a token and fire ``on_login`` in ``session``."""
    set_context_page(session.page)
    try:
        await authorize_callback(
            session.page,
            {
                "state": record.state,
                "code": record.code,
                "error": record.error,
                "error_description": record.error_description,
            },
        )
    except Exception:
        logger.exception("OAuth sign-in of session %s failed", session.id)


def deliver(registry: FletRegistry, hub: str, text: str) -> None:
    """An OAuth result another process received (through the backend): sign
    in the session it is for, if this process holds it."""
    try:
        record = OAuthState.loads(text)
    except Exception:
        logger.error("undecodable OAuth completion for app %s", hub, exc_info=True)
        return
    entry = registry.sessions.get((hub, record.session_id))
    if entry is None:
        return  # another process's session
    logger.debug("completing the OAuth sign-in of session %s from Redis", record.session_id)
    registry.spawn(authorize(entry.session, record))


async def take_session(
    mount: FletMount, registry: FletRegistry, connection: Peer, client: ClientInfo
) -> LoopSafeSession | None:
    """The session a redirect-flow sign-in came back to, via the cookie."""
    token = client.oauth_state
    if not token:
        return None
    raw = await registry.oauth_states.take(_done_key(mount, token))
    if raw is None:
        return None  # a stale cookie: its sign-in completed or expired
    record = OAuthState.loads(raw)
    entry = registry.sessions.get((mount.name, record.session_id))
    if entry is not None and entry.connection is connection:
        session: LoopSafeSession | None = entry.session
    else:
        session = await registry.resume(mount.name, record.session_id, connection, client)
    if session is None:
        logger.info("OAuth sign-in came back to an ended session %s", record.session_id)
        return None
    _completions[connection] = record
    return session


async def complete(connection: Peer, session: LoopSafeSession) -> None:
    """Finish the sign-in :func:`take_session` found, once the client is registered."""
    record = _completions.pop(connection, None)
    if record is not None:
        await authorize(session, record)
