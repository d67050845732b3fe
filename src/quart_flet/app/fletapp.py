"""``FletApp``: one Flet app, and the four blocks that serve it from routes
of the app's own (the web client, the WebSocket, the upload PUT, the OAuth
callback), at paths it chooses and behind its own decorators. ``FletRoutes``
names the endpoints of those routes, so every URL the browser is given comes
from ``url_for``; ``flet_blueprint()`` is these blocks on routes of its own.

The four blocks, and flet.fastapi's counterparts: docs/how-to/own-routes.md.
"""

from __future__ import annotations

from typing import Any, Unpack

from quart import Quart, Response, ResponseReturnValue, current_app, request

from quart_flet.app.extension import QuartFlet
from quart_flet.errors import NOT_STARTED, json_error
from quart_flet.http import headers, uploads
from quart_flet.mount import (
    DrainHook,
    FletMount,
    FletRoutes,
    SaveHook,
    SessionEndHook,
    path_for,
)
from quart_flet.options import (
    APP_WIDE,
    FletOptionsArgs,
    OptionError,
    checked_options,
    config_layer,
    resolve_options,
)
from quart_flet.session import connection, oauth
from quart_flet.session.registry import FletRegistry
from quart_flet.types import AppCallable

__all__ = ["FletApp", "FletRoutes"]


class FletApp:
    """The Flet app ``main``, to serve from routes you write.

    >>> counter = FletApp(main, routes=FletRoutes(index="counter", websocket="counter_ws"))
    >>> counter.init_app(app)

    Options are those of :class:`quart_flet.FletOptions` (the endpoint paths
    excepted: your routes choose the paths); a bad one raises OptionError
    here. ``on_session_start(page)`` runs before main in each new session;
    ``on_session_end(page, reason)`` once when a session that started ends
    (:class:`quart_flet.SessionEndReason`); ``on_drain(page, seconds_left)``
    in each connected session when a graceful stop begins and the app's
    ``drain_seconds`` is above 0; ``on_session_save(page)`` when the server
    begins to stop, returning a dict of JSON values the browser's next
    session finds in ``page.session.store`` (quart_flet.session.saved). Each
    may be sync or async.
    """

    def __init__(
        self,
        main: AppCallable,
        before_main: AppCallable | None = None,
        *,
        routes: FletRoutes | None = None,
        on_session_start: AppCallable | None = None,
        on_session_end: SessionEndHook | None = None,
        on_drain: DrainHook | None = None,
        on_session_save: SaveHook | None = None,
        app: Quart | None = None,
        **opts: Unpack[FletOptionsArgs],
    ) -> None:
        for label, func in (
            ("main", main),
            ("before_main", before_main),
            ("on_session_start", on_session_start),
            ("on_session_end", on_session_end),
            ("on_drain", on_drain),
            ("on_session_save", on_session_save),
        ):
            if func is not None and not callable(func):
                raise OptionError(f"quart-flet option {label}: {func!r} is not callable")
        self.main = main
        self.before_main = before_main
        self.routes = routes
        self.on_session_start = on_session_start
        self.on_session_end = on_session_end
        self.on_drain = on_drain
        self.on_session_save = on_session_save
        self.opts: dict[str, Any] = checked_options(opts)  # a bad one fails now
        for option in APP_WIDE:
            if option in self.opts:
                raise OptionError(
                    f"quart-flet option {option} is app-wide: give it to "
                    f"QuartFlet(app, {option}=...), not to one Flet app"
                )
        #: the options from the arguments and the environment alone (app.config
        #: and QuartFlet's join them in mount_on)
        self.given = resolve_options(**self.opts)
        self.name: str = self.given.name
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Register this Flet app on ``app``; its routes are checked at startup."""
        if self.routes is None:
            raise OptionError(
                f"quart-flet: FletApp {self.name!r} needs routes=FletRoutes(index=..., "
                "websocket=...) naming your routes' endpoints (or use flet_blueprint)"
            )
        self.mount_on(app, self.name, self.routes)

    def mount_on(self, app: Quart, name: str, routes: FletRoutes) -> FletMount:
        """This Flet app on ``app`` under ``name``, served by ``routes``. The
        options come from the arguments, then app.config's FLET_* keys, then
        QuartFlet(app, ...); a FLET_* environment variable beats them all."""
        registry = QuartFlet.registry(app)
        layers = [config_layer(app.config), ("QuartFlet(...)", registry.app_options)]
        options = resolve_options(layers=layers, **self.opts)
        if options.max_threads is not None:
            if registry.max_threads not in (None, options.max_threads):
                raise OptionError(
                    f"quart-flet option max_threads: {options.max_threads} conflicts with "
                    f"{registry.max_threads} given by another Flet app of this app (one pool "
                    "per app: give it to QuartFlet(app, max_threads=...))"
                )
            registry.max_threads = options.max_threads
        if name in registry.mounts:
            raise OptionError(
                f"quart-flet: two Flet apps named {name!r} on one app: give each its own name=..."
            )
        mount = FletMount(
            name,
            self.main,
            self.before_main,
            options,
            routes,
            self.on_session_start,
            self.on_session_end,
            self.on_drain,
            self.on_session_save,
        )
        registry.add_mount(mount)
        return mount

    def _here(self) -> tuple[FletMount, FletRegistry]:
        registry = QuartFlet.registry(current_app)
        mount = registry.mounts.get(self.name)
        if mount is None:
            raise RuntimeError(f"Flet app {self.name!r} is not registered: call init_app(app)")
        return mount, registry

    async def static_files(self, path: str = "") -> Response:
        """The web client: the index for '' (and any route-like path, for
        the SPA's own routes), else the client's file ``path``."""
        return await serve_client(*self._here(), path)

    async def handle(self) -> None:
        """The WebSocket: serve the current ``websocket`` as a Flet session."""
        await connection.serve_websocket(*self._here())

    async def upload(self) -> Response:
        """The upload PUT of ``page.get_upload_url()``'s signed URLs."""
        mount, _ = self._here()
        return await serve_upload(mount)

    async def oauth_callback(self) -> ResponseReturnValue:
        """The OAuth provider's redirect after ``page.login()``."""
        return await serve_oauth_callback(*self._here())


async def serve_client(mount: FletMount, registry: FletRegistry, path: str) -> Response:
    """The web client block: ``path`` under the client's base (the index
    route's URL). A plain GET of the WebSocket or upload URL is told why not."""
    webclient = registry.webclients[mount.name]
    if webclient.patched_dir is None:  # prepared at startup
        return json_error(503, NOT_STARTED)
    base = path_for(mount.routes.index)
    websocket_path = path_for(mount.routes.websocket)
    here = request.script_root.rstrip("/") + request.path  # as url_for builds it
    if here == websocket_path:
        response = json_error(426, "this is the Flet WebSocket: open it with a WebSocket upgrade")
        response.headers["Upgrade"] = "websocket"
    elif mount.routes.upload is not None and here == path_for(mount.routes.upload):
        response = json_error(405, "uploads are PUT to a URL from page.get_upload_url()")
        response.headers["Allow"] = "PUT"
    else:
        response = await webclient.file(path, base, websocket_path)
    return headers.apply_headers(response, mount.options, web_client=True)


async def serve_upload(mount: FletMount) -> Response:
    """The upload block, with the app's response headers."""
    return headers.apply_headers(await uploads.receive_upload(mount), mount.options)


async def serve_oauth_callback(mount: FletMount, registry: FletRegistry) -> ResponseReturnValue:
    """The OAuth callback block, with the app's response headers."""
    response = await current_app.make_response(await oauth.callback(mount, registry))
    if isinstance(response, Response):
        headers.apply_headers(response, mount.options)
    return response
