"""Every option of a Flet blueprint, resolved once and validated in one place.

Arguments come first; a FLET_* environment variable, when set, overrides the
argument (as in Flet's own web server), so a deployment can change an option
without touching code. A bad value raises :class:`OptionError` naming the option
at import/registration time, never at the first request.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypedDict

from flet.controls.types import RouteUrlStrategy, WebRenderer

__all__ = ["FletOptions", "FletOptionsArgs", "OptionError", "resolve_options"]

#: The Cross-Origin-Embedder-Policy sent for isolation, or False for none.
CrossOriginIsolation = Literal[False, "credentialless", "require-corp"]


class OptionError(ValueError):
    """A quart-flet option has a bad value; the message names the option.

    A bad option is met while the app starts (``hypercorn module:app`` or
    ``python app.py`` importing it), so one that nobody catches is printed as
    its one line, without the traceback around it. The hook that does so is
    installed when the first OptionError is made, never at import: a program
    that imports quart-flet and never has a bad option keeps its hook, and
    errors other than an OptionError always go to the hook it had."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        if not isinstance(sys.excepthook, _OneLineOptionErrors):
            sys.excepthook = _OneLineOptionErrors(sys.excepthook)


class _OneLineOptionErrors:
    """A ``sys.excepthook``: an uncaught OptionError as ``error: <message>``;
    anything else to the hook that was in place before."""

    def __init__(self, previous: Callable[..., Any]) -> None:
        self.previous = previous

    def __call__(self, kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if isinstance(error, OptionError):
            print(f"error: {error}", file=sys.stderr)
        else:
            self.previous(kind, error, tb)


def _option(default: Any, doc: str, shown: str | None = None) -> Any:
    """A FletOptions field: ``doc`` feeds help(FletOptions) and the README's
    options table (:func:`options_table`); ``shown`` is its default in words."""
    return field(default=default, metadata={"doc": doc, "default": shown})


@dataclass(frozen=True)
class FletOptions:
    """The options of one Flet blueprint. Build it with :func:`resolve_options`."""

    name: str = _option(
        "flet",
        "the blueprint's name, in endpoint names (`<name>.index`); give each Flet app its own",
    )
    assets_dir: Path | None = _option(
        None,
        "a directory with the app's assets; its favicon, icons, manifest.json and "
        "loading animation override the web client's",
    )
    app_name: str | None = _option(None, "the PWA's name (manifest.json)")
    app_short_name: str | None = _option(None, "the PWA's short name")
    app_description: str | None = _option(None, "the PWA's description")
    web_renderer: WebRenderer = _option(
        WebRenderer.AUTO, "Flutter's renderer: `auto`, `canvaskit` or `skwasm`", "`auto`"
    )
    route_url_strategy: RouteUrlStrategy = _option(
        RouteUrlStrategy.PATH, "how routes show in the address bar: `path` or `hash`", "`path`"
    )
    no_cdn: bool = _option(
        True,
        "serve CanvasKit and fonts ourselves instead of from a CDN, so apps work "
        "offline and on intranets (flet-web's client still fetches the Rive runtime "
        "from a CDN, for Rive animations only)",
    )
    session_timeout_seconds: float = _option(
        3600, "how long a disconnected session waits for its browser to come back"
    )
    max_held_sessions: int = _option(
        500,
        "the most disconnected sessions this Flet app holds per process, waiting for "
        "their browsers to come back; past it the longest-disconnected end first "
        "(`on_session_end` hears `evicted`)",
    )
    oauth_state_timeout_seconds: float = _option(
        600, "the longest time from page.login() to the OAuth callback"
    )
    websocket_endpoint: str = _option("ws", "the WebSocket's path under the blueprint's prefix")
    upload_endpoint: str = _option("upload", "the upload PUT's path under the prefix")
    oauth_callback_endpoint: str = _option(
        "oauth_callback", "the OAuth callback's path under the prefix"
    )
    upload_dir: Path | None = _option(
        None, "where uploads are stored; None turns uploads off (the PUT answers 404)"
    )
    max_upload_size: int | None = _option(None, "the largest upload in bytes; None: no limit")
    secret_key: str | None = _option(
        None,
        "signs upload URLs and what crosses Redis; None falls back to the app's "
        "`SECRET_KEY` (`SECRET_KEY_FALLBACKS` still verify)",
    )
    max_threads: int | None = _option(
        None,
        "threads in the app's pool for sync handlers (one pool per app)",
        "`min(32, cpus + 4)`",
    )
    max_message_size: int = _option(
        16 * 1024 * 1024,
        "the largest message a browser may send, as on Flet's own server; once "
        "registered, a larger one is dropped and the method call it answers fails "
        "(Hypercorn's own `websocket_max_message_size`, also 16 MiB by default, "
        "closes the connection above its limit first)",
        "16 MiB",
    )
    max_send_buffer: int = _option(
        16 * 1024 * 1024,
        "bytes that may wait for one browser (frames not yet written to its socket, and "
        "pubsub messages its session has yet to handle) before it is disconnected (1008)",
        "16 MiB",
    )
    allowed_origins: tuple[str, ...] = _option(
        (),
        "origins besides the page's own that may open the WebSocket "
        "(`https://example.com`, comma-separated in the variable; `*` allows any)",
        "none",
    )
    cross_origin_isolation: CrossOriginIsolation = _option(
        "credentialless",
        "isolate the web client's page so skwasm runs multi-threaded: `credentialless` "
        "(or `true`) sends COOP `same-origin` + COEP `credentialless` (other sites' "
        "images still load, without cookies); `require-corp` the strict COEP; "
        "`false` neither",
        "`credentialless`",
    )
    cors_allow_origin: str | None = _option(
        None,
        "`Access-Control-Allow-Origin` for the HTTP routes: one origin, a "
        "comma-separated list (the request's Origin is echoed when listed) or `*`",
    )
    redis_url: str | None = _option(
        None,
        "share pubsub and OAuth state between processes through this Redis; "
        "None keeps them in this process",
    )
    sticky_cookie: str | None = _option(
        None,
        "a cookie name (`flet_client`): the index gives each browser a random id in "
        "it, for a load balancer to keep each browser on one process",
    )
    health_path: str | None = _option(
        None,
        "app-wide (QuartFlet): a liveness URL (`/healthz`), 200 with JSON while the "
        "event loop answers; None: no route",
    )
    ready_path: str | None = _option(
        None,
        "app-wide (QuartFlet): a readiness URL (`/readyz`), 200 while serving, 503 "
        "from the moment a graceful stop begins; None: no route",
    )
    metrics_path: str | None = _option(
        None,
        "app-wide (QuartFlet): a Prometheus metrics URL (`/metrics`), needs the "
        "`metrics` extra (prometheus_client); None: no route",
    )
    drain_seconds: float = _option(
        0,
        "app-wide (QuartFlet): on a graceful stop, readiness turns 503 and new Flet "
        "sockets are refused with 503 at once, while open sessions keep working this "
        "long (the app's `on_drain` hook hears it), then close with 1012; must stay "
        "below Hypercorn's `graceful_timeout`; 0 closes them at once (1001)",
    )
    reconnect_notice: str = _option(
        "Connection lost. Reconnecting…",
        "what the page shows over the app while its WebSocket is lost and the client "
        "retries; empty: nothing",
        "`Connection lost. Reconnecting…`",
    )
    reconnect_notice_delay_seconds: float = _option(
        2, "how long a lost connection waits before the notice shows (a quick reconnect shows none)"
    )
    reconnect_reload_seconds: float = _option(
        60,
        "a connection lost this long makes the page reload itself as soon as its URL answers "
        "again (the session resumes if the server still has it); 0: never",
    )
    reconnect_login_url: str | None = _option(
        None,
        "where a page goes when a reconnect is refused and its own URL then answers 401, 403 "
        "or a redirect (signed out): a URL, `{next}` replaced by the page's path; None "
        "reloads the page, so the host's own auth shows its login",
    )


class FletOptionsArgs(TypedDict, total=False):
    """The options as keyword arguments, for type checkers: what
    ``flet_blueprint(main, **opts)``, ``FletApp`` and ``QuartFlet`` accept
    (the values :func:`resolve_options` converts, strings included)."""

    name: str
    assets_dir: str | os.PathLike[str] | None
    app_name: str | None
    app_short_name: str | None
    app_description: str | None
    web_renderer: WebRenderer | str
    route_url_strategy: RouteUrlStrategy | str
    no_cdn: bool | str
    session_timeout_seconds: float | str
    max_held_sessions: int | str
    oauth_state_timeout_seconds: float | str
    websocket_endpoint: str
    upload_endpoint: str
    oauth_callback_endpoint: str
    upload_dir: str | os.PathLike[str] | None
    max_upload_size: int | str | None
    secret_key: str | None
    max_threads: int | str | None
    max_message_size: int | str
    max_send_buffer: int | str
    allowed_origins: str | Iterable[str]
    cross_origin_isolation: CrossOriginIsolation | bool | str
    cors_allow_origin: str | None
    redis_url: str | None
    sticky_cookie: str | None
    health_path: str | None
    ready_path: str | None
    metrics_path: str | None
    drain_seconds: float | str
    reconnect_notice: str
    reconnect_notice_delay_seconds: float | str
    reconnect_reload_seconds: float | str
    reconnect_login_url: str | None


def _shown_default(option: Any) -> str:
    shown = option.metadata.get("default")
    if shown is not None:
        return str(shown)
    if option.default is None:
        return "none"
    if isinstance(option.default, bool):
        return f"`{str(option.default).lower()}`"
    if isinstance(option.default, str):
        return f"`{option.default}`"
    return f"{option.default:g}" if isinstance(option.default, float) else str(option.default)


def option_docs() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, what) of every option."""
    return [
        (f.name, ENV_VARS.get(f.name, ""), _shown_default(f), f.metadata["doc"])
        for f in fields(FletOptions)
    ]


def options_table() -> str:
    """The README's options table, made from the options' own docs."""
    rows = ["| option | env | default | what |", "| --- | --- | --- | --- |"]
    for name, env, default, doc in option_docs():
        rows.append(f"| `{name}` | {f'`{env}`' if env else ''} | {default} | {doc} |")
    return "\n".join(rows) + "\n"


# option name -> environment variable that overrides it
ENV_VARS: dict[str, str] = {
    "assets_dir": "FLET_ASSETS_DIR",
    "app_name": "FLET_APP_NAME",
    "app_short_name": "FLET_APP_SHORT_NAME",
    "app_description": "FLET_APP_DESCRIPTION",
    "web_renderer": "FLET_WEB_RENDERER",
    "route_url_strategy": "FLET_WEB_ROUTE_URL_STRATEGY",
    "no_cdn": "FLET_WEB_NO_CDN",
    "session_timeout_seconds": "FLET_SESSION_TIMEOUT",
    "max_held_sessions": "FLET_MAX_HELD_SESSIONS",
    "oauth_state_timeout_seconds": "FLET_OAUTH_STATE_TIMEOUT",
    "websocket_endpoint": "FLET_WEBSOCKET_HANDLER_ENDPOINT",
    "upload_endpoint": "FLET_UPLOAD_HANDLER_ENDPOINT",
    "oauth_callback_endpoint": "FLET_OAUTH_CALLBACK_HANDLER_ENDPOINT",
    "upload_dir": "FLET_UPLOAD_DIR",
    "max_upload_size": "FLET_MAX_UPLOAD_SIZE",
    "secret_key": "FLET_SECRET_KEY",
    "max_threads": "FLET_MAX_THREADS",
    "max_message_size": "FLET_MAX_MESSAGE_SIZE",
    "max_send_buffer": "FLET_MAX_SEND_BUFFER",
    "allowed_origins": "FLET_ALLOWED_ORIGINS",
    "cross_origin_isolation": "FLET_CROSS_ORIGIN_ISOLATION",
    "cors_allow_origin": "FLET_CORS_ALLOW_ORIGIN",
    "redis_url": "FLET_REDIS_URL",
    "sticky_cookie": "FLET_STICKY_COOKIE",
    "health_path": "FLET_HEALTH_PATH",
    "ready_path": "FLET_READY_PATH",
    "metrics_path": "FLET_METRICS_PATH",
    "drain_seconds": "FLET_DRAIN_SECONDS",
    "reconnect_notice": "FLET_RECONNECT_NOTICE",
    "reconnect_notice_delay_seconds": "FLET_RECONNECT_NOTICE_DELAY",
    "reconnect_reload_seconds": "FLET_RECONNECT_RELOAD",
    "reconnect_login_url": "FLET_RECONNECT_LOGIN_URL",
}

#: options of the whole Quart app, given to QuartFlet (or by their variables)
APP_WIDE_ROUTES = ("health_path", "ready_path", "metrics_path")
APP_WIDE = (*APP_WIDE_ROUTES, "drain_seconds")

FletOptions.__doc__ = (
    (FletOptions.__doc__ or "")
    + "\n\nOptions (FLET_* variable, default):\n\n"
    + (
        "\n".join(
            f"{name}{f' ({env})' if env else ''}, default {default}:\n    {doc}\n"
            for name, env, default, doc in option_docs()
        )
    )
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true/false)")


def _isolation(value: Any) -> CrossOriginIsolation:
    text = str(value).strip().lower()
    if text == "require-corp":
        return "require-corp"
    if text == "credentialless":
        return "credentialless"
    try:
        return "credentialless" if _bool(value) else False
    except ValueError:
        raise ValueError(
            f"{value!r} is not true/false, 'credentialless' or 'require-corp'"
        ) from None


def _enum(kind: type[WebRenderer] | type[RouteUrlStrategy]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        try:
            return kind(value.value if isinstance(value, kind) else str(value).lower())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise ValueError(f"{value!r} is not one of {allowed}") from None

    return convert


def _number(minimum: float, integer: bool = False) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        try:
            number = int(value) if integer else float(value)
        except (TypeError, ValueError):
            kind = "a whole number" if integer else "a number"
            raise ValueError(f"{value!r} is not {kind}") from None
        if number < minimum:
            raise ValueError(f"{value!r} is below the minimum of {minimum:g}")
        return number

    return convert


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None or value == "" else convert(value)


def _endpoint(value: Any) -> str:
    text = str(value).strip().strip("/")
    if not text or any(c in text for c in "<>?#% "):
        raise ValueError(f"{value!r} is not a plain URL path segment")
    return text


def _name(value: Any) -> str:
    text = str(value)
    if not text or "." in text or " " in text:
        raise ValueError(f"{value!r} is not a valid blueprint name (no dots or spaces)")
    return text


def _text(value: Any) -> str:
    return str(value)


def _origins(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    origins = tuple(str(item).strip().rstrip("/") for item in items if str(item).strip())
    for origin in origins:
        if origin != "*" and "://" not in origin:
            raise ValueError(f"{origin!r} is not an origin like https://example.com or *")
    return origins


def _redis_url(value: Any) -> str:
    text = str(value)
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{text!r} is not a redis://, rediss:// or unix:// URL")
    return text


# RFC 6265 cookie-name = token (RFC 2616): visible ASCII except separators
_COOKIE_NAME_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)


def _cookie_name(value: Any) -> str:
    text = str(value)
    if not text or not set(text) <= _COOKIE_NAME_CHARS:
        raise ValueError(f"{text!r} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)")
    return text


def _route_path(value: Any) -> str:
    text = str(value).strip()
    if not text.startswith("/") or any(c in text for c in "<>?#% "):
        raise ValueError(f"{value!r} is not an absolute URL path like /healthz")
    return text


def _login_url(value: Any) -> str:
    text = str(value).strip()
    if not text.startswith(("/", "http://", "https://")) or text.startswith("//"):
        raise ValueError(f"{value!r} is not a path like /login or an http(s):// URL")
    if any(c in text for c in "<>\"' \\"):
        raise ValueError(f"{value!r} has characters a URL does not")
    return text


def _directory(must_exist: bool) -> Callable[[Any], Path]:
    def convert(value: Any) -> Path:
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        path = path.resolve()
        if must_exist and not path.is_dir():
            raise ValueError(f"directory {str(path)!r} does not exist")
        if not must_exist and path.exists() and not path.is_dir():
            raise ValueError(f"{str(path)!r} exists and is not a directory")
        return path

    return convert


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "assets_dir": _optional(_directory(must_exist=True)),
    "app_name": _optional(_text),
    "app_short_name": _optional(_text),
    "app_description": _optional(_text),
    "web_renderer": _enum(WebRenderer),
    "route_url_strategy": _enum(RouteUrlStrategy),
    "no_cdn": _bool,
    "session_timeout_seconds": _number(0),
    "max_held_sessions": _number(1, integer=True),
    "oauth_state_timeout_seconds": _number(1),
    "websocket_endpoint": _endpoint,
    "upload_endpoint": _endpoint,
    "oauth_callback_endpoint": _endpoint,
    "upload_dir": _optional(_directory(must_exist=False)),
    "max_upload_size": _optional(_number(1, integer=True)),
    "secret_key": _optional(_text),
    "max_threads": _optional(_number(1, integer=True)),
    "max_message_size": _number(64, integer=True),
    "max_send_buffer": _number(64 * 1024, integer=True),
    "allowed_origins": _origins,
    "cross_origin_isolation": _isolation,
    "cors_allow_origin": _optional(_text),
    "redis_url": _optional(_redis_url),
    "sticky_cookie": _optional(_cookie_name),
    "health_path": _optional(_route_path),
    "ready_path": _optional(_route_path),
    "metrics_path": _optional(_route_path),
    "drain_seconds": _number(0),
    "reconnect_notice": _text,
    "reconnect_notice_delay_seconds": _number(0),
    "reconnect_reload_seconds": _number(0),
    "reconnect_login_url": _optional(_login_url),
}


#: Where an option's value may come from below the call's own arguments: a
#: label for messages ("app.config") and the values it gives, by option name.
Layer = tuple[str, Mapping[str, Any]]


def config_layer(config: Mapping[str, Any]) -> Layer:
    """The options a Quart app's config gives, under the FLET_* names of
    their environment variables (``app.config["FLET_UPLOAD_DIR"]``)."""
    given = {
        name: config[env] for name, env in ENV_VARS.items() if config.get(env) not in (None, "")
    }
    return ("app.config", given)


def checked_options(opts: Mapping[str, Any]) -> dict[str, Any]:
    """``opts`` under their names here (renamed ones moved, flet.fastapi's
    refused), every one known and valid: an OptionError names the first bad one."""
    resolve_options({}, **opts)
    return _migrate(dict(opts))


def resolve_options(
    environ: Mapping[str, str] | None = None, *, layers: Sequence[Layer] = (), **opts: Any
) -> FletOptions:
    """Validate ``opts``, apply FLET_* overrides from ``environ`` (default
    ``os.environ``) and return the frozen result. An option neither in the
    environment nor in ``opts`` comes from the first of ``layers`` that gives
    it (the app's config, the extension's arguments), else its default.

    >>> resolve_options(web_renderer="canvaskit").web_renderer.value
    'canvaskit'
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    known = {f.name for f in fields(FletOptions)}
    opts = _migrate(opts)
    unknown = sorted(set(opts) - known)
    if unknown:
        raise OptionError(_unknown(unknown[0], known))
    values: dict[str, Any] = {}
    for name in sorted(known):
        env_name = ENV_VARS.get(name)
        if env_name and env.get(env_name, "") != "":
            raw, source = env[env_name], f"{name} (from {env_name})"
        elif name in opts:
            raw, source = opts[name], name
        else:
            layer = next(((label, given) for label, given in layers if name in given), None)
            if layer is None:
                continue
            label, given = layer
            raw = given[name]
            where = f"{label}[{env_name!r}]" if label == "app.config" and env_name else label
            source = f"{name} (from {where})"
        try:
            values[name] = _CONVERTERS[name](raw)
        except ValueError as error:
            raise OptionError(f"quart-flet option {source}: {error}") from None
    options = FletOptions(**values)
    endpoints = [
        options.websocket_endpoint,
        options.upload_endpoint,
        options.oauth_callback_endpoint,
    ]
    if len(set(endpoints)) != len(endpoints):
        raise OptionError(
            "quart-flet options websocket_endpoint, upload_endpoint and "
            f"oauth_callback_endpoint must differ, got {endpoints}"
        )
    return options


# Options of flet.fastapi (flet_web.fastapi.app, FletStaticFiles) that are
# spelled differently here or have no counterpart: what to do instead.
FASTAPI_OPTIONS: dict[str, str] = {
    "proxy_path": (
        "mount the blueprint with app.register_blueprint(..., url_prefix='/path'), "
        "and behind a proxy run Hypercorn with --root-path"
    ),
    "upload_endpoint_path": (
        "use upload_endpoint='upload', a path under the blueprint's prefix "
        "(page.get_upload_url builds the full URL)"
    ),
    "app_mount_path": "use app.register_blueprint(..., url_prefix='/path')",
    "use_color_emoji": "color emoji fonts are not supported by quart-flet yet; leave it out",
}
# flet.fastapi's names for the same thing: accepted with a DeprecationWarning.
# (Its websocket_endpoint_path only when relative: an absolute one is refused.)
RENAMED: dict[str, str] = {"websocket_endpoint_path": "websocket_endpoint"}


def _migrate(opts: dict[str, Any]) -> dict[str, Any]:
    """``opts`` with renamed options under their names here; an option of
    flet.fastapi that has no counterpart is an OptionError saying what to use."""
    for old, hint in FASTAPI_OPTIONS.items():
        if old in opts:
            raise OptionError(
                f"quart-flet option {old!r} is flet.fastapi's and has no counterpart here: {hint}"
            )
    path = opts.get("websocket_endpoint_path")
    if isinstance(path, str) and path.startswith("/"):
        raise OptionError(
            f"quart-flet option 'websocket_endpoint_path': {path!r} is absolute; use "
            "websocket_endpoint='ws', a path under the blueprint's prefix"
        )
    moved = {name: value for name, value in opts.items() if name not in RENAMED}
    for old, new in RENAMED.items():
        if old in opts:
            warnings.warn(
                f"quart-flet option {old!r} is now called {new!r}",
                DeprecationWarning,
                stacklevel=4,
            )
            if new in opts:
                raise OptionError(f"quart-flet options {old!r} and {new!r} are the same: give one")
            moved[new] = opts[old]
    return moved


def _unknown(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known | set(RENAMED)), n=1, cutoff=0.6)
    if close:
        return f"unknown quart-flet option {name!r}: did you mean {close[0]!r}?"
    return (
        f"unknown quart-flet option {name!r}; the options are listed in the README "
        "(or help(quart_flet.FletOptions))"
    )


# Flet's documented variables that quart-flet does not read here, and why.
IGNORED_ENV_VARS: dict[str, str] = {
    "FLET_SERVER_PORT": "Hypercorn's --bind chooses the port (e.g. --bind 0.0.0.0:8000)",
    "FLET_SERVER_IP": "Hypercorn's --bind chooses the address (e.g. --bind 0.0.0.0:8000)",
    "FLET_WEB_APP_PATH": (
        "the mount path is the blueprint's url_prefix (register_blueprint(..., url_prefix=...))"
    ),
    "FLET_FORCE_WEB_SERVER": "quart-flet always serves the web client; nothing to force",
    "FLET_WEB_USE_COLOR_EMOJI": "color emoji fonts are not supported by quart-flet yet",
}


# Those of them this process honours after all: quart_flet.run() and the
# quart-flet command read FLET_SERVER_PORT, FLET_SERVER_IP, FLET_WEB_APP_PATH.
HONOURED_ENV_VARS: set[str] = set()


def ignored_env_warnings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per Flet variable that is set but means nothing here."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    return [
        f"{name} is set but not used by quart-flet: {why}"
        for name, why in IGNORED_ENV_VARS.items()
        if env.get(name, "") != "" and name not in HONOURED_ENV_VARS
    ]


def secret_keys(config: Mapping[str, Any], options: FletOptions, needed_for: str) -> list[str]:
    """``[*fallbacks, current]``: the secret_key option (FLET_SECRET_KEY) or the
    Quart app's SECRET_KEY signs; SECRET_KEY_FALLBACKS still verify, so keys
    can rotate. No key at all is an OptionError saying what needs one."""
    current = options.secret_key or config.get("SECRET_KEY")
    if not current:
        raise OptionError(
            f"quart-flet option secret_key: {needed_for}, but there is no secret key: "
            "set app.config['SECRET_KEY'], pass flet_blueprint(..., secret_key=...) "
            "or set the FLET_SECRET_KEY environment variable"
        )
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    return [*(str(key) for key in fallbacks if key), str(current)]
