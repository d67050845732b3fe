"""``flet_blueprint()``: the routes of one Flet app and the serving hooks that
start and stop the app-wide registry. Routes only call into other modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from flet.messaging.session import Session
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

from quart_flet import oauth, security, uploads
from quart_flet.dispatch import AppCallable
from quart_flet.errors import http_exception_as_json, json_error
from quart_flet.handshake import Handshake
from quart_flet.options import FletOptions, OptionError, resolve_options
from quart_flet.registry import EXTENSION_KEY, FletRegistry
from quart_flet.transport import ClientInfo, FletConnection
from quart_flet.webclient import WebClient


@dataclass
class FletMount:
    """One Flet app registered on one Quart app: what its routes share."""

    name: str
    main: AppCallable
    before_main: AppCallable | None
    options: FletOptions
    registry: FletRegistry
    webclient: WebClient = field(init=False)

    def __post_init__(self) -> None:
        self.webclient = WebClient(self.options)

    async def prepare(self, app: Quart) -> None:
        """Startup, once the app's config is final: patched client files, and
        for uploads the key check, upload_dir and the streaming body."""
        assert self.registry.temp_dir is not None
        await self.webclient.prepare(f"{self.registry.temp_dir}/{self.name}")
        await uploads.prepare(app, self)

    # Uploads and OAuth: see quart_flet.uploads / quart_flet.oauth.
    def upload_url(self, file_name: str, expires: int) -> str:
        return uploads.upload_url(self, file_name, expires)

    def store_oauth_state(self, session: Session, attrs: dict[str, Any]) -> None:
        oauth.store_state(self, session, attrs)

    async def take_oauth_session(self, connection: FletConnection) -> Session | None:
        return await oauth.take_session(self, connection)

    async def complete_oauth(self, connection: FletConnection, session: Session) -> None:
        await oauth.complete(connection, session)


def _registry_for(app: Quart, options: FletOptions) -> FletRegistry:
    registry = app.extensions.get(EXTENSION_KEY)
    if registry is None:
        registry = app.extensions[EXTENSION_KEY] = FletRegistry(max_threads=options.max_threads)

        @app.before_serving
        async def start_flet() -> None:
            await registry.start(app.config)
            for mount in registry.mounts.values():
                await mount.prepare(app)

        @app.after_serving
        async def stop_flet() -> None:
            await registry.stop()

        # A 405 (POST to the client's files, say) is a routing error: Quart
        # answers it with the app's handlers, as the request has no blueprint.
        app.before_request(_routing_error_as_json)
        app.before_websocket(_routing_error_as_json)

    elif options.max_threads is not None and registry.max_threads not in (
        None,
        options.max_threads,
    ):
        raise OptionError(
            f"quart-flet option max_threads: {options.max_threads} conflicts with "
            f"{registry.max_threads} given by another Flet blueprint of this app (one pool per app)"
        )
    elif options.max_threads is not None:
        registry.max_threads = options.max_threads
    return registry


def _mount(blueprint: str | None) -> FletMount:
    registry: FletRegistry = current_app.extensions[EXTENSION_KEY]
    return registry.mounts[blueprint or ""]


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
            registry: FletRegistry = current_app.extensions[EXTENSION_KEY]
            return registry.mounts.get(blueprint) if dot else None
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
        security.apply_headers(response, mount.options)
    return response


def flet_blueprint(
    main: AppCallable,
    before_main: AppCallable | None = None,
    **opts: Any,
) -> Blueprint:
    """A Blueprint serving the Flet app ``main``: its web client at the prefix
    root, the WebSocket, the upload PUT and the OAuth callback.

    >>> app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")

    Options are those of :class:`quart_flet.FletOptions`; a bad value raises
    :class:`quart_flet.OptionError` here, naming the option.
    """
    if not callable(main):
        raise OptionError(f"quart-flet: main must be callable, got {main!r}")
    if before_main is not None and not callable(before_main):
        raise OptionError(f"quart-flet option before_main: {before_main!r} is not callable")
    options = resolve_options(**opts)
    bp = Blueprint(options.name, __name__)

    # async: Quart runs a sync hook in a thread of the loop's default executor
    async def add_headers(response: Response) -> Response:
        return security.apply_headers(response, options)

    bp.after_request(add_headers)
    # errors raised in the views below (a 413, say) in JSON, in any Quart app;
    # routing errors (a 405) never reach it: see _routing_error_as_json
    bp.register_error_handler(HTTPException, http_exception_as_json)

    @bp.record
    def register(state: BlueprintSetupState) -> None:
        app = cast(Quart, state.app)
        registry = _registry_for(app, options)
        # the name request.blueprint reports: dotted when nested in another blueprint
        name = f"{state.name_prefix}.{state.name}".lstrip(".")
        if name in registry.mounts:
            raise ValueError(
                f"two Flet blueprints named {name!r} on one app: give each "
                "flet_blueprint(..., name=...) a name of its own"
            )
        registry.mounts[name] = FletMount(name, main, before_main, options, registry)
        if state.url_prefix and state.url_prefix.strip("/"):
            # url_prefix="/p/" would put this redirect on "/p/" itself (a loop);
            # the routes below are added after this hook and follow the change
            state.url_prefix = state.url_prefix.rstrip("/")
            # '/prefix' -> '/prefix/', even when another Flet app sits at '/'
            state.add_url_rule("", "slash_redirect", hide(_slash_redirect))

    # the web client's routes are pages, not an API: kept out of OpenAPI
    bp.add_url_rule("/", "index", hide(_index))
    bp.add_url_rule("/<path:path>", "file", hide(_file))
    bp.add_websocket(f"/{options.websocket_endpoint}", "websocket", _websocket)
    bp.add_url_rule(f"/{options.upload_endpoint}", "upload", _upload, methods=["PUT"])
    bp.add_url_rule(f"/{options.oauth_callback_endpoint}", "oauth_callback", _oauth_callback)
    return bp


def _base() -> str:
    """The real mount point: ASGI root_path + url_prefix, ending in '/'."""
    return url_for(f"{request.blueprint}.index")


async def _slash_redirect() -> ResponseReturnValue:
    query = request.query_string.decode("latin-1")
    return redirect(_base() + (f"?{query}" if query else ""), 308)


async def _index() -> ResponseReturnValue:
    return await _mount(request.blueprint).webclient.index(_base())


async def _file(path: str) -> ResponseReturnValue:
    mount = _mount(request.blueprint)
    if path == mount.options.websocket_endpoint:  # a plain GET of the WebSocket
        response = json_error(426, "this is the Flet WebSocket: open it with a WebSocket upgrade")
        response.headers["Upgrade"] = "websocket"
        return response
    if path == mount.options.upload_endpoint:
        response = json_error(405, "uploads are PUT to a URL from page.get_upload_url()")
        response.headers["Allow"] = "PUT"
        return response
    return await mount.webclient.file(path, _base())


async def _websocket() -> None:
    mount = _mount(websocket.blueprint)
    security.check_websocket_origin(mount.options)  # a 403 before accept
    base = url_for(f"{websocket.blueprint}.index")
    scheme = "https" if websocket.scheme in ("wss", "https") else "http"
    client = ClientInfo(
        handshake=Handshake.of_websocket(),  # the websocket context ends at the handler
        page_url=f"{scheme}://{websocket.host}{base.rstrip('/')}",
        page_name=base.strip("/"),
    )
    await FletConnection(mount, websocket._get_current_object(), client).serve()  # type: ignore[attr-defined]


@uploads.document
async def _upload() -> ResponseReturnValue:
    """Receive a file for a signed URL from page.get_upload_url().

    The body is the raw file (not multipart), streamed into upload_dir and
    renamed into place once complete. 400: bad query or file name; 403: bad
    signature; 410: expired URL; 413: over max_upload_size; 404: uploads off.
    """
    return await uploads.receive_upload(_mount(request.blueprint))


@oauth.document
async def _oauth_callback() -> ResponseReturnValue:
    """OAuth redirect target of page.login(): completes the sign-in.

    Renders the completion page, or redirects to the Flet page with the
    flet_oauth_state cookie (redirect_to_page). 400: bad query, unknown,
    expired or reused state; 410: the session that signed in has ended.
    """
    return await oauth.callback(_mount(request.blueprint))


def flet_app(main: AppCallable, before_main: AppCallable | None = None, **opts: Any) -> Quart:
    """A ready Quart app serving ``main`` at '/': ``hypercorn module:app``.

    The app has no ``/static`` route (it would shadow the Flet client's files),
    and answers HTTP errors (a 405, say) with JSON like the Flet routes do.
    """
    app = Quart("quart_flet", static_folder=None)
    app.register_error_handler(HTTPException, http_exception_as_json)
    app.register_blueprint(flet_blueprint(main, before_main, **opts))
    return app
