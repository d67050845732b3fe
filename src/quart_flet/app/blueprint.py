"""``flet_blueprint()`` and ``quart_app()``: the blocks of quart_flet.app.fletapp
on routes of their own under one prefix, answering errors in JSON."""

from __future__ import annotations

import warnings
from typing import Any, Unpack, cast

from quart import (
    Blueprint,
    Quart,
    Response,
    ResponseReturnValue,
    current_app,
    has_request_context,
    redirect,
    request,
    url_for,
    websocket,
)
from quart.blueprints import BlueprintSetupState
from quart.wrappers import BaseRequestWebsocket, Websocket
from quart_schema import hide
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from quart_flet.app import fletapp
from quart_flet.app.extension import QuartFlet
from quart_flet.app.fletapp import FletApp
from quart_flet.errors import http_exception_as_json
from quart_flet.http import headers, uploads
from quart_flet.mount import DrainHook, FletMount, FletRoutes, SaveHook, SessionEndHook
from quart_flet.options import APP_WIDE, FletOptionsArgs
from quart_flet.session import connection, oauth
from quart_flet.session.registry import FletRegistry
from quart_flet.types import AppCallable


def _registry() -> FletRegistry:
    return QuartFlet.registry(current_app)


def _mount(blueprint: str | None) -> FletMount:
    return _registry().mounts[blueprint or ""]


def _routing_error_mount(conn: BaseRequestWebsocket) -> FletMount | None:
    """The Flet mount whose route the failed match of ``conn`` was for: the
    route that matches its path with an allowed method (a 405), or as an HTTP
    request rather than a WebSocket or the reverse (a 400). None when the
    match did not fail, or the route is not a Flet app's (the user's own)."""
    error = conn.routing_exception
    if conn.url_rule is not None or not isinstance(error, HTTPException):
        return None
    if isinstance(error, RoutingException):  # a redirect (a missing slash): not an error
        return None
    adapter = current_app.create_url_adapter(conn)
    if adapter is None:
        return None
    is_websocket = isinstance(conn, Websocket)
    methods = ["GET", *(getattr(error, "valid_methods", None) or ())]
    for as_websocket in (is_websocket, not is_websocket):
        for method in methods:
            try:
                rule, _ = adapter.match(method=method, websocket=as_websocket, return_rule=True)
            except HTTPException:
                continue
            blueprint, dot, _ = rule.endpoint.rpartition(".")
            return _registry().mounts.get(blueprint) if dot else None
    return None


async def _routing_error_as_json() -> Response | None:
    """Answer a routing error on a Flet app's routes with JSON, as its views do.

    Installed app-wide (before_request/before_websocket); the user's own
    routes keep the app's error handling.
    """
    conn: BaseRequestWebsocket = request if has_request_context() else websocket
    mount = _routing_error_mount(conn)
    if mount is None:
        return None
    assert isinstance(conn.routing_exception, HTTPException)
    response = await http_exception_as_json(conn.routing_exception)
    if has_request_context():
        headers.apply_headers(response, mount.options)
    return response


def flet_blueprint(
    main: AppCallable,
    before_main: AppCallable | None = None,
    *,
    on_session_start: AppCallable | None = None,
    on_session_end: SessionEndHook | None = None,
    on_drain: DrainHook | None = None,
    on_session_save: SaveHook | None = None,
    **opts: Unpack[FletOptionsArgs],
) -> Blueprint:
    """A Blueprint serving the Flet app ``main``: its web client at the prefix
    root, the WebSocket, the upload PUT and the OAuth callback.

    >>> app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")

    Options are those of :class:`quart_flet.FletOptions`; a bad value raises
    :class:`quart_flet.OptionError` here, naming the option. The hooks are
    FletApp's.
    """
    flet = FletApp(
        main,
        before_main,
        on_session_start=on_session_start,
        on_session_end=on_session_end,
        on_drain=on_drain,
        on_session_save=on_session_save,
        **opts,
    )
    paths = flet.given  # the endpoint paths: from code and env only
    bp = Blueprint(flet.name, __name__)

    # async: Quart runs a sync hook in a thread of the loop's default executor
    async def add_headers(response: Response) -> Response:
        return headers.apply_headers(response, _mount(request.blueprint).options)

    bp.after_request(add_headers)
    # errors raised in the views below (a 413, say) in JSON, in any Quart app;
    # routing errors (a 405) never reach it: see _routing_error_as_json
    bp.register_error_handler(HTTPException, http_exception_as_json)

    @bp.record
    def register(state: BlueprintSetupState) -> None:
        app = cast(Quart, state.app)
        # the name request.blueprint reports: dotted when nested in another blueprint
        name = f"{state.name_prefix}.{state.name}".lstrip(".")
        flet.mount_on(app, name, FletRoutes.of_blueprint(name))
        if _routing_error_as_json not in app.before_request_funcs.get(None, []):
            # A 405 (POST to the client's files, say) is a routing error: Quart
            # answers it with the app's handlers, as the request has no blueprint.
            app.before_request(_routing_error_as_json)
            app.before_websocket(_routing_error_as_json)
        if state.url_prefix and state.url_prefix.strip("/"):
            # url_prefix="/p/" would put this redirect on "/p/" itself (a loop);
            # the routes below are added after this hook and follow the change
            state.url_prefix = state.url_prefix.rstrip("/")
            # '/prefix' -> '/prefix/', even when another Flet app sits at '/'
            state.add_url_rule("", "slash_redirect", hide(_slash_redirect))

    # the web client's routes are pages, not an API: kept out of OpenAPI
    bp.add_url_rule("/", "index", hide(_file), defaults={"path": ""})
    bp.add_url_rule("/<path:path>", "file", hide(_file))
    bp.add_websocket(f"/{paths.websocket_endpoint}", "websocket", _websocket)
    bp.add_url_rule(f"/{paths.upload_endpoint}", "upload", _upload, methods=["PUT"])
    bp.add_url_rule(f"/{paths.oauth_callback_endpoint}", "oauth_callback", _oauth_callback)
    return bp


async def _slash_redirect() -> ResponseReturnValue:
    query = request.query_string.decode("latin-1")
    base = url_for(f"{request.blueprint}.index")
    return redirect(base + (f"?{query}" if query else ""), 308)


async def _file(path: str) -> ResponseReturnValue:
    return await fletapp.serve_client(_mount(request.blueprint), _registry(), path)


async def _websocket() -> None:
    await connection.serve_websocket(_mount(websocket.blueprint), _registry())


@uploads.document
async def _upload() -> ResponseReturnValue:
    """Receive a file for a signed URL from page.get_upload_url().

    The body is the raw file (not multipart), streamed into upload_dir and
    renamed into place once complete. 400: bad query or file name; 403: bad
    signature; 410: expired URL; 413: over max_upload_size; 404: uploads off;
    507: the server's disk is full.
    """
    return await fletapp.serve_upload(_mount(request.blueprint))


@oauth.document
async def _oauth_callback() -> ResponseReturnValue:
    """OAuth redirect target of page.login(): completes the sign-in.

    Renders the completion page, or redirects to the Flet page with the
    flet_oauth_state cookie (redirect_to_page). 400: bad query, unknown,
    expired or reused state; 410: the session that signed in has ended.
    """
    return await fletapp.serve_oauth_callback(_mount(request.blueprint), _registry())


def quart_app(
    main: AppCallable,
    before_main: AppCallable | None = None,
    **opts: Any,
) -> Quart:
    """A ready Quart app serving ``main`` at '/': ``hypercorn module:app``.

    The app has no ``/static`` route (it would shadow the Flet client's files),
    and answers HTTP errors (a 405, say) with JSON like the Flet routes do.
    Keyword arguments are flet_blueprint's; the app-wide options among them
    (``drain_seconds``, ``ready_path``...) go to the app's QuartFlet.
    """
    app = Quart("quart_flet", static_folder=None)
    app.register_error_handler(HTTPException, http_exception_as_json)
    app_wide = {option: opts.pop(option) for option in APP_WIDE if option in opts}
    if app_wide:
        QuartFlet(app, **app_wide)
    app.register_blueprint(flet_blueprint(main, before_main, **opts))
    return app


def flet_app(
    main: AppCallable,
    before_main: AppCallable | None = None,
    **opts: Any,
) -> Quart:
    """Deprecated name of :func:`quart_app` (it returns a Quart app, while
    :class:`~quart_flet.FletApp` is one Flet app's building blocks)."""
    warnings.warn(
        "quart_flet.flet_app() is now quart_app(): same arguments, same app",
        DeprecationWarning,
        stacklevel=2,
    )
    return quart_app(main, before_main, **opts)
