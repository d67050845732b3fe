"""Every option of a Flet blueprint, resolved once and validated in one place.

Arguments come first; a FLET_* environment variable, when set, overrides the
argument (as in Flet's own web server), so a deployment can change an option
without touching code. A bad value raises :class:`OptionError` naming the option
at import/registration time, never at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from flet.controls.types import RouteUrlStrategy, WebRenderer

__all__ = ["FletOptions", "OptionError", "resolve_options"]

#: The Cross-Origin-Embedder-Policy sent for isolation, or False for none.
CrossOriginIsolation = Literal[False, "credentialless", "require-corp"]


class OptionError(ValueError):
    """A quart-flet option has a bad value; the message names the option."""


@dataclass(frozen=True)
class FletOptions:
    """The options of one Flet blueprint. Build it with :func:`resolve_options`."""

    #: Blueprint name; endpoint names are ``<name>.index``, ``<name>.websocket``...
    name: str = "flet"
    #: Directory with the app's assets; overrides favicon, icons, manifest.json
    #: and the loading animation of the web client (FLET_ASSETS_DIR).
    assets_dir: Path | None = None
    #: PWA name, short name and description (FLET_APP_NAME, ...).
    app_name: str | None = None
    app_short_name: str | None = None
    app_description: str | None = None
    #: Flutter renderer: auto, canvaskit or skwasm (FLET_WEB_RENDERER).
    web_renderer: WebRenderer = WebRenderer.AUTO
    #: path or hash (FLET_WEB_ROUTE_URL_STRATEGY).
    route_url_strategy: RouteUrlStrategy = RouteUrlStrategy.PATH
    #: Serve CanvasKit and fonts ourselves instead of from a CDN (FLET_WEB_NO_CDN).
    #: On by default so apps work on intranets and offline.
    no_cdn: bool = True
    #: How long a disconnected session waits for its client (FLET_SESSION_TIMEOUT).
    session_timeout_seconds: float = 3600
    #: Longest time between starting OAuth and its callback (FLET_OAUTH_STATE_TIMEOUT).
    oauth_state_timeout_seconds: float = 600
    #: Route paths under the blueprint prefix.
    websocket_endpoint: str = "ws"
    upload_endpoint: str = "upload"
    oauth_callback_endpoint: str = "oauth_callback"
    #: Uploads: target directory, size limit in bytes, signing key.
    upload_dir: Path | None = None
    max_upload_size: int | None = None
    secret_key: str | None = None
    #: Threads in the app's pool for sync handlers (FLET_MAX_THREADS); None
    #: means min(32, cpu_count + 4), as ThreadPoolExecutor does.
    max_threads: int | None = None
    #: Largest WebSocket message accepted from a client (FLET_MAX_MESSAGE_SIZE):
    #: 16 MiB, as Flet's own server; a larger one is dropped and the method
    #: call it answers fails. Hypercorn's ``websocket_max_message_size`` (also
    #: 16 MiB by default) closes the connection above its own limit first.
    max_message_size: int = 16 * 1024 * 1024
    #: Bytes queued for a client that is not reading before it is disconnected.
    max_send_buffer: int = 16 * 1024 * 1024
    #: Origins allowed to open the WebSocket besides the request's own host,
    #: e.g. ("https://example.com",); "*" allows any (FLET_ALLOWED_ORIGINS,
    #: comma-separated).
    allowed_origins: tuple[str, ...] = ()
    #: Cross-origin isolation of the web client's page, so skwasm runs
    #: multi-threaded (FLET_CROSS_ORIGIN_ISOLATION). "credentialless" (the
    #: default; True means the same) sends COOP same-origin and COEP
    #: credentialless on the index and the client's files: other sites' images
    #: still load, without cookies. "require-corp" sends the strict COEP, which
    #: blocks cross-origin resources that lack a CORP (or CORS) header. False
    #: sends neither. Read back as False, "credentialless" or "require-corp".
    cross_origin_isolation: CrossOriginIsolation = "credentialless"
    #: Access-Control-Allow-Origin for the HTTP routes; None sends none
    #: (FLET_CORS_ALLOW_ORIGIN).
    cors_allow_origin: str | None = None
    #: Share pubsub and OAuth state between processes through this Redis
    #: (FLET_REDIS_URL); None keeps them in memory in this process.
    redis_url: str | None = None
    #: Cookie the index sets to a random browser id, so a load balancer can
    #: hash on it and keep each browser on one process (FLET_STICKY_COOKIE).
    sticky_cookie: str | None = None


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
}

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
}


def resolve_options(environ: Mapping[str, str] | None = None, **opts: Any) -> FletOptions:
    """Validate ``opts``, apply FLET_* overrides from ``environ`` (default
    ``os.environ``) and return the frozen result.

    >>> resolve_options(web_renderer="canvaskit").web_renderer.value
    'canvaskit'
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    known = {f.name for f in fields(FletOptions)}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise OptionError(
            f"unknown quart-flet option {unknown[0]!r}; known options: " + ", ".join(sorted(known))
        )
    values: dict[str, Any] = {}
    for name in sorted(known):
        env_name = ENV_VARS.get(name)
        if env_name and env.get(env_name, "") != "":
            raw, source = env[env_name], f"{name} (from {env_name})"
        elif name in opts:
            raw, source = opts[name], name
        else:
            continue
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
