"""``QuartFlet(app)``: quart-flet's place in one Quart app, in the Quart way
(as quart-auth's ``QuartAuth`` or quart-schema's ``QuartSchema``).

It holds what every Flet app of the Quart app shares (the registry: the
thread pool, the sessions, the Redis backend) in ``app.extensions``, and the
options given to it, which every Flet app of the app inherits. Its serving
hooks start and stop all of them. ``flet_blueprint`` and ``FletApp`` create
one with defaults when the app has none.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Unpack

from quart import Quart

from quart_flet import oauth, uploads
from quart_flet.backends import backend_for
from quart_flet.mount import FletMount
from quart_flet.options import FletOptionsArgs, OptionError, checked_options
from quart_flet.registry import EXTENSION_KEY, FletRegistry

__all__ = ["QuartFlet"]

logger = logging.getLogger("quart_flet")


class QuartFlet:
    """quart-flet for a Quart app: ``QuartFlet(app, max_threads=8)`` or
    ``flet = QuartFlet()`` then ``flet.init_app(app)``.

    Options given here (any of :class:`quart_flet.FletOptions`) apply to every
    Flet app of the app that does not set its own; the app-wide ones
    (``max_threads``, ``redis_url``, ``secret_key``) belong here. Set it up
    before registering Flet apps, once per app.
    """

    def __init__(self, app: Quart | None = None, **opts: Unpack[FletOptionsArgs]) -> None:
        self.options: dict[str, Any] = checked_options(opts)  # a bad one fails here
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        existing = app.extensions.get(EXTENSION_KEY)
        if existing is not None:
            how = (
                "QuartFlet(app) was called twice"
                if existing.extension is not None
                else "a Flet app was registered before QuartFlet(app): set it up first"
            )
            raise OptionError(f"quart-flet is set up twice on this app: {how}")
        registry = FletRegistry(app_options=dict(self.options))
        registry.extension = self
        app.extensions[EXTENSION_KEY] = registry

        @app.before_serving
        async def start_flet() -> None:
            await start(app, registry)

        @app.after_serving
        async def stop_flet() -> None:
            await registry.stop()

    @staticmethod
    def registry(app: Quart) -> FletRegistry:
        """The app's registry; a QuartFlet with defaults is set up if it has none."""
        registry = app.extensions.get(EXTENSION_KEY)
        if registry is None:
            QuartFlet().init_app(app)
            registry = app.extensions[EXTENSION_KEY]
            registry.extension = None  # made for the app, not by it
        assert isinstance(registry, FletRegistry)
        return registry


async def start(app: Quart, registry: FletRegistry) -> None:
    """Startup, once the app's config and routes are final."""
    if registry.started:
        return
    for mount in registry.mounts.values():
        check_routes(app, mount)
    deliver = functools.partial(oauth.deliver, registry)
    await registry.start(backend_for(app.config, registry.mounts.values(), deliver))
    assert registry.temp_dir is not None
    for mount in registry.mounts.values():
        # patched client files, and for uploads the key, upload_dir and streaming
        await mount.webclient.prepare(f"{registry.temp_dir}/{mount.name}")
        await uploads.prepare(app, mount)


def check_routes(app: Quart, mount: FletMount) -> None:
    """Every endpoint the mount's FletRoutes name is a route of the app, of
    the right kind: an OptionError naming the one that is not."""
    routes = mount.routes
    wanted = [
        ("index", routes.index, False),
        ("websocket", routes.websocket, True),
        ("upload", routes.upload, False),
        ("oauth_callback", routes.oauth_callback, False),
    ]
    for field, endpoint, websocket in wanted:
        if endpoint is None:
            continue
        try:
            rules = list(app.url_map.iter_rules(endpoint))
        except KeyError:
            rules = []
        if not rules:
            raise OptionError(
                f"quart-flet: FletRoutes({field}={endpoint!r}) of Flet app {mount.name!r}: "
                "the app has no route with that endpoint"
            )
        if not any(rule.websocket == websocket for rule in rules):
            kind = "a WebSocket route (app.websocket)" if websocket else "an HTTP route"
            raise OptionError(
                f"quart-flet: FletRoutes({field}={endpoint!r}) of Flet app {mount.name!r} "
                f"must name {kind}"
            )
        if not websocket and not any(
            not rule.arguments - set(rule.defaults or ()) for rule in rules
        ):
            raise OptionError(
                f"quart-flet: FletRoutes({field}={endpoint!r}) of Flet app {mount.name!r}: "
                "its URL must build without arguments (give the catch-all route "
                'defaults={"path": ""} and the same endpoint)'
            )
    if mount.options.upload_dir is not None and routes.upload is None:
        logger.warning(
            "Flet app %r has upload_dir but no upload route: page.get_upload_url() will fail "
            "(add a PUT route calling upload() and name it in FletRoutes(upload=...))",
            mount.name,
        )
