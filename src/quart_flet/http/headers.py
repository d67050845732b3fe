"""Response headers and the WebSocket Origin check, both driven by options:
COOP/COEP on the web client's responses (cross-origin isolated by default,
so Flutter's skwasm renderer runs multi-threaded), ``cors_allow_origin``,
and the Origins a WebSocket may come from (its own host, or
``allowed_origins``).

Why and how: docs/discussion/web-client.md, "Isolation headers" and "CORS and
the WebSocket's Origin".
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Response, abort, request, websocket

from quart_flet.errors import json_error
from quart_flet.options import FletOptions

_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}


def apply_headers(response: Response, options: FletOptions, web_client: bool = False) -> Response:
    """Add the COOP/COEP and CORS headers ``options`` ask for.

    COOP/COEP go on the web client's successful responses (200, 206, 304)
    only (``web_client``); a header the app already set is kept. Applying
    them twice changes nothing.
    """
    isolation = options.cross_origin_isolation
    if isolation and web_client and response.status_code < 400:
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Embedder-Policy", isolation)
    allowed = options.cors_allow_origin
    if allowed:
        if allowed.strip() == "*":
            response.headers["Access-Control-Allow-Origin"] = "*"
        else:
            origin = (request.headers.get("Origin") or "").rstrip("/")
            listed = [item.strip().rstrip("/") for item in allowed.split(",")]
            if origin and origin in listed:
                response.headers["Access-Control-Allow-Origin"] = origin
            elif len(listed) == 1:
                response.headers["Access-Control-Allow-Origin"] = listed[0]
            response.vary.add("Origin")
    return response


def _host_port(netloc: str, scheme: str) -> str:
    """'Example.com:443' with https -> 'example.com'; default ports dropped."""
    netloc = netloc.lower()
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default and netloc.endswith(f":{default}"):
        netloc = netloc[: -len(default) - 1]
    return netloc


def origin_allowed(origin: str | None, host: str, scheme: str, allowed: tuple[str, ...]) -> bool:
    """Whether a WebSocket with this Origin may connect to ``host``.

    The host is compared without the scheme: behind a TLS-terminating proxy
    the server sees ws:// while the page is https://.
    """
    if origin is None:
        return True  # not a browser
    if "*" in allowed:
        return True
    origin = origin.strip().rstrip("/")
    if origin.lower() in (item.lower() for item in allowed):
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:  # "http://[::1": an unclosed IPv6 bracket, and the like
        return False
    if not parts.scheme or not parts.netloc:
        return False  # "null" (sandboxed iframes, file://) and garbage
    return _host_port(parts.netloc, parts.scheme) == _host_port(host, scheme)


def check_websocket_origin(options: FletOptions) -> None:
    """Refuse the current WebSocket with an HTTP 403 unless its Origin is allowed.

    Call before accepting: Quart then sends the 403 as the handshake's answer.
    """
    origin = websocket.headers.get("Origin")
    if not origin_allowed(origin, websocket.host, websocket.scheme, options.allowed_origins):
        abort(
            json_error(
                403,
                f"WebSocket Origin {origin!r} is not allowed: it must match the host "
                f"{websocket.host!r} or be listed in the allowed_origins option",
            )
        )
