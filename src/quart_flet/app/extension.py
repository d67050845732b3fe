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
from typing import Any, Unpack, cast

from quart import Quart, Response
from quart_schema import hide

from quart_flet.app import health, metrics
from quart_flet.asgi import h2streams, leanws
from quart_flet.backends import Backend, OAuthStateStore, backend_for
from quart_flet.http import uploads
from quart_flet.mount import FletMount
from quart_flet.options import (
    FletOptionsArgs,
    OptionError,
    checked_options,
    config_layer,
    resolve_options,
)
from quart_flet.session import connection, oauth, relay
from quart_flet.session.filestore import FileStore
from quart_flet.session.registry import EXTENSION_KEY, FletRegistry
from quart_flet.session.saved import SavedStates, saved_dir
from quart_flet.session.siblings import SiblingsBackend

__all__ = ["QuartFlet"]

logger = logging.getLogger("quart_flet")


class QuartFlet:
    """quart-flet for a Quart app: ``QuartFlet(app, max_threads=8)`` or
    ``flet = QuartFlet()`` then ``flet.init_app(app)``.

    Options given here (any of [FletOptions][quart_flet.FletOptions]) apply to
    every Flet app of the app that does not set its own; the app-wide ones
    (``max_threads``, ``redis_url``, ``secret_key``, ``drain_seconds``, and
    the routes ``health_path``, ``ready_path``, ``metrics_path``: see "Where
    options come from" in the options reference) belong here. Set it up before
    registering Flet apps, once per app.

    The probes and metrics are also blocks for routes of your own:

    >>> @app.get("/internal/ready")
    ... async def ready() -> Response:
    ...     return await QuartFlet.readiness()
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
        leanws.install(app)  # ~3 KiB less per WebSocket held
        add_probe_routes(app, self.options)

        @app.before_serving
        async def start_flet() -> None:
            await start(app, registry)
            metrics.start_sharing(registry)  # with --workers N: for the scraped worker

        @app.after_serving
        async def stop_flet() -> None:
            await registry.stop()
            metrics.stop_sharing()

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

    @staticmethod
    async def liveness() -> Response:
        """The liveness block: 200 and JSON while the event loop answers."""
        return await health.liveness()

    @staticmethod
    async def readiness() -> Response:
        """The readiness block: 200 while serving, 503 once a graceful stop began."""
        return await health.readiness()

    @staticmethod
    async def metrics() -> Response:
        """The Prometheus block (the ``metrics`` extra): the text format."""
        return await metrics.metrics()


def add_probe_routes(app: Quart, options: dict[str, Any]) -> None:
    """The routes of health_path, ready_path and metrics_path (arguments, then
    app.config's FLET_* keys; a FLET_* variable beats both)."""
    resolved = resolve_options(layers=[config_layer(app.config)], **options)
    routes = [
        ("health_path", resolved.health_path, "quart_flet_liveness", health.liveness),
        ("ready_path", resolved.ready_path, "quart_flet_readiness", health.readiness),
        ("metrics_path", resolved.metrics_path, "quart_flet_metrics", metrics.metrics),
    ]
    taken: dict[str, str] = {}
    for option, path, endpoint, view in routes:
        if path is None:
            continue
        if path in taken:
            raise OptionError(f"quart-flet options {taken[path]} and {option} are both {path!r}")
        taken[path] = option
        if option == "metrics_path":
            metrics.require_prometheus(option)
        # probes for the platform, not the app's API: kept out of OpenAPI
        app.add_url_rule(path, endpoint, hide(view), methods=["GET"])


async def start(app: Quart, registry: FletRegistry) -> None:
    """Startup, once the app's config and routes are final."""
    if registry.started:
        return
    for mount in registry.mounts.values():
        check_routes(app, mount)
    # an early answer over HTTP/2 (a 413 upload) must not kill the connection
    h2streams.install()
    resolved = resolve_options(layers=[config_layer(app.config)], **registry.app_options)
    registry.drain_seconds = resolved.drain_seconds
    deliver = functools.partial(oauth.deliver, registry)
    await start_relay(app, registry)
    backend = backend_for(
        app.config, {m.name: m.options for m in registry.mounts.values()}, deliver
    )
    if backend is None and registry.relay is not None:
        # several workers and no Redis: pubsub and OAuth over the relay
        backend = SiblingsBackend(registry.relay, deliver)
    await registry.start(backend)
    assert registry.temp_dir is not None
    if any(mount.on_session_save is not None for mount in registry.mounts.values()):
        try:
            registry.saved = SavedStates(saved_store(app, backend), app.secret_key)
        except OSError as error:
            logger.warning("on_session_save: nowhere to keep saved states (%s)", error)
    for mount in registry.mounts.values():
        # patched client files, and for uploads the key, upload_dir and streaming
        await registry.webclients[mount.name].prepare(f"{registry.temp_dir}/{mount.name}")
        await uploads.prepare(app, mount)


async def start_relay(app: Quart, registry: FletRegistry) -> None:
    """In a worker of a server with several (``--workers N``), listen for
    the siblings' misrouted reconnects (quart_flet.session.relay)."""
    directory = relay.relay_dir()
    if directory is None:
        return
    channel = relay.Relay(
        directory, app.secret_key, functools.partial(connection.serve_relayed, registry)
    )
    try:
        await channel.start()
    except OSError as error:
        await channel.stop()
        logger.warning(
            "no relay between workers (%s): a reconnect may lose its session, and pubsub "
            "and OAuth sign-ins stay within each worker",
            error,
        )
        return
    registry.relay = channel


def saved_store(app: Quart, backend: Backend | None) -> OAuthStateStore:
    """Where saved session states wait: Redis when the app uses it, else
    files in this app's private directory on this host."""
    store = getattr(backend, "saved_states", None)
    if store is not None:
        return cast(OAuthStateStore, store)
    directory = saved_dir(app.import_name, app.root_path)
    relay.private_dir(directory)
    return FileStore(directory)


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
