"""``quart_flet.run(main_or_app)``: serve with Hypercorn from ``python app.py``.

Flet's own variables choose where: ``FLET_SERVER_PORT`` (8000),
``FLET_SERVER_IP`` (127.0.0.1; ``*`` is every interface) and, for a ``main``,
``FLET_WEB_APP_PATH`` (the mount path). Hypercorn gets the settings the
Procfile uses (:data:`SAFE_SETTINGS`) and the uvloop worker when installed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import LifespanFailureError, wrap_app
from quart import Quart
from werkzeug.exceptions import HTTPException

from quart_flet import options as flet_options
from quart_flet.app.blueprint import flet_blueprint
from quart_flet.errors import http_exception_as_json
from quart_flet.options import OptionError
from quart_flet.types import AppCallable

__all__ = ["SAFE_SETTINGS", "ServerOptions", "hypercorn_config", "resolve_server_options", "run"]

#: Hypercorn settings for serving Flet, the Procfile's and examples/hypercorn.toml's:
#: a backlog that survives a crowd connecting at once, pings and a read timeout
#: that drop vanished browsers, a short graceful stop (Flet sockets close at once).
SAFE_SETTINGS: dict[str, Any] = {
    "backlog": 2048,
    "websocket_ping_interval": 20.0,
    "read_timeout": 60,
    "graceful_timeout": 5.0,
}

# option -> Flet's variable that overrides it (as FLET_* override every option)
SERVER_ENV_VARS = {
    "host": "FLET_SERVER_IP",
    "port": "FLET_SERVER_PORT",
    "path": "FLET_WEB_APP_PATH",
}


@dataclass(frozen=True)
class ServerOptions:
    """Where :func:`run` listens, and where it mounts a ``main``."""

    host: str = "127.0.0.1"
    port: int = 8000
    path: str = "/"

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, port: int | None = None) -> str:
        """The URL to open: a wildcard address is shown as the loopback one."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        path = self.path if self.path == "/" else self.path + "/"
        return f"http://{host}:{self.port if port is None else port}{path}"


def _host(value: Any) -> str:
    text = str(value).strip()
    if text == "*":  # as in flet.app: every interface
        return "0.0.0.0"
    if not text or any(c in text for c in " /[]"):
        raise ValueError(f"{value!r} is not an IP address or host name")
    return text


def _port(value: Any) -> int:
    port: int = flet_options._number(0, integer=True)(value)
    if port > 65535:
        raise ValueError(f"{value!r} is above the largest port, 65535")
    return port


def _path(value: Any) -> str:
    """Flet's page name (``myapp``) or a URL path (``/my/app/``) -> ``/my/app``."""
    text = str(value).strip().strip("/")
    if any(c in text for c in "<>?#% ") or "//" in text:
        raise ValueError(f"{value!r} is not a URL path like /app or app")
    return "/" + text


_CONVERTERS: dict[str, Callable[[Any], Any]] = {"host": _host, "port": _port, "path": _path}


def resolve_server_options(environ: Mapping[str, str] | None = None, **opts: Any) -> ServerOptions:
    """``host``, ``port``, ``path``; Flet's variables in ``environ`` (default
    ``os.environ``) override them. A bad value raises OptionError naming both."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    unknown = sorted(set(opts) - set(SERVER_ENV_VARS))
    if unknown:
        raise OptionError(f"unknown quart-flet server option {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, env_name in SERVER_ENV_VARS.items():
        if env.get(env_name, "") != "":
            raw, source = env[env_name], f"{name} (from {env_name})"
        elif opts.get(name) is not None:
            raw, source = opts[name], name
        else:
            continue
        try:
            values[name] = _CONVERTERS[name](raw)
        except ValueError as error:
            raise OptionError(f"quart-flet option {source}: {error}") from None
    return ServerOptions(**values)


def hypercorn_config(server: ServerOptions) -> Config:
    """A Hypercorn Config with :data:`SAFE_SETTINGS`, bound to ``server``."""
    config = Config()
    config.bind = [server.bind]
    for name, value in SAFE_SETTINGS.items():
        setattr(config, name, value)
    # above quart-flet's max_message_size, so ours refuses a big message cleanly
    config.websocket_max_message_size = 32 * 1024 * 1024
    return config


def app_for(target: Quart | AppCallable, server: ServerOptions, **opts: Any) -> Quart:
    """``target`` when it is a Quart app, else a Quart app serving ``target``
    (a Flet ``main``) at ``server.path`` with ``opts`` (FletOptions)."""
    if isinstance(target, Quart):
        if opts:
            raise OptionError(
                f"quart-flet: options {sorted(opts)} are for a Flet main; "
                "give them to flet_blueprint() in your Quart app instead"
            )
        if server.path != "/":
            raise OptionError(
                f"quart-flet option path: {server.path!r} mounts a Flet main; "
                "a Quart app has its own url_prefix (unset FLET_WEB_APP_PATH / --path)"
            )
        return target
    app = Quart("quart_flet", static_folder=None)  # as quart_app(): no /static to shadow
    app.register_error_handler(HTTPException, http_exception_as_json)
    prefix = None if server.path == "/" else server.path
    app.register_blueprint(flet_blueprint(target, **opts), url_prefix=prefix)
    return app


def run(
    target: Quart | AppCallable,
    *,
    host: str | None = None,
    port: int | None = None,
    path: str | None = None,
    config: Config | None = None,
    **opts: Any,
) -> None:
    """Serve a Flet ``main`` (or a Quart app) with Hypercorn until Ctrl-C.

    >>> if __name__ == "__main__":
    ...     quart_flet.run(main)  # http://127.0.0.1:8000/, or $FLET_SERVER_PORT

    ``host``/``port``/``path`` are overridden by ``FLET_SERVER_IP``,
    ``FLET_SERVER_PORT`` and ``FLET_WEB_APP_PATH``; other keywords are
    FletOptions. ``config`` replaces the Hypercorn settings (its bind is kept
    when set). A bad value exits with one line naming it.
    """
    try:
        server = resolve_server_options(host=host, port=port, path=path)
        app = app_for(target, server, **opts)
    except OptionError as error:
        raise SystemExit(f"error: {error}") from None
    serve(app, server, config)


def listen(config: Config, server: ServerOptions) -> Sockets:
    """The sockets of ``config.bind``, listening from now on: a browser
    opening the URL printed next waits in the backlog until the app has
    started, rather than being refused. A port in use exits with one line."""
    try:
        sockets = config.create_sockets()
    except OSError as error:
        raise SystemExit(
            f"error: cannot listen on {server.bind}: {error.strerror or error}; "
            "choose another port with FLET_SERVER_PORT (or --port)"
        ) from None
    for sock in sockets.secure_sockets + sockets.insecure_sockets:
        sock.listen(config.backlog)
    return sockets


def serve(
    app: Quart,
    server: ServerOptions,
    config: Config | None = None,
    fd: int | None = None,
    sockets: Sockets | None = None,
) -> None:
    """Serve ``app`` in this process; ``fd`` is a listening socket to serve
    on (the reloader's, kept open across restarts), ``sockets`` the ones a
    supervisor listens on (quart_flet.cli.supervisor). Either makes this
    process a worker that prints nothing of its own."""
    if config is None:
        config = hypercorn_config(server)
    if fd is not None:
        config.bind = [f"fd://{fd}"]
    flet_options.HONOURED_ENV_VARS.update(SERVER_ENV_VARS.values())
    announce = fd is None and sockets is None
    if sockets is None:
        sockets = listen(config, server)
    if announce:
        print(f"quart-flet: serving {server.url(bound_port(sockets))} (Ctrl-C to stop)", flush=True)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(
                worker_serve(
                    wrap_app(app, config.wsgi_max_body_size, None), config, sockets=sockets
                )
            )
    except KeyboardInterrupt:  # Ctrl-C before Hypercorn's own handler was in place
        pass
    except (OptionError, LifespanFailureError) as error:
        raise SystemExit(f"error: {_lifespan_message(error)}") from None
    if announce:
        print("quart-flet: stopped", flush=True)


def _lifespan_message(error: Exception) -> str:
    if isinstance(error, LifespanFailureError) and error.__cause__ is not None:
        return str(error.__cause__)
    return str(error)


def bound_port(sockets: Sockets) -> int:
    """The TCP port the sockets listen on (the one the kernel chose for port 0)."""
    for sock in sockets.insecure_sockets + sockets.secure_sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return int(sock.getsockname()[1])
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when installed: Hypercorn's WebSockets are faster on it."""
    if sys.platform == "win32":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
