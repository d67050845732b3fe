"""Hypercorn's ProxyFixMiddleware, made safe for WebSockets.

``ProxyFixMiddleware`` copies X-Forwarded-Proto (``https``, as nginx's
``$scheme`` sends for a wss:// request too) into the scope's scheme, even for
a WebSocket; Quart then takes the WebSocket for an HTTP request and routes
it to the wrong view (a 500). ``proxy_fix`` maps it back to ``wss``/``ws``,
and keeps an HTTP request's scheme ``http``/``https``: whatever the header
says (``ftp``, ``ws``, empty, garbage), only ``https``/``wss`` mean secure.

>>> app = proxy_fix(quart_app(main))  # hypercorn module:app behind nginx
"""

from __future__ import annotations

from typing import Any, Literal

from hypercorn.middleware import ProxyFixMiddleware

_SECURE = {"https", "wss"}
_SCHEMES = {"http": ("http", "https"), "websocket": ("ws", "wss")}  # (plain, secure)


def scope_scheme(scope_type: str, scheme: object) -> str | None:
    """The scheme an ASGI scope of ``scope_type`` gets for a forwarded scheme:
    ``wss``/``https`` when it says https or wss, ``ws``/``http`` otherwise.
    None for scope types without a scheme (lifespan)."""
    schemes = _SCHEMES.get(scope_type)
    if schemes is None:
        return None
    secure = isinstance(scheme, str) and scheme.strip().lower() in _SECURE
    return schemes[secure]


class _WebsocketScheme:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scheme = scope_scheme(scope["type"], scope.get("scheme"))
        if scheme is not None and scope.get("scheme") != scheme:
            scope = {**scope, "scheme": scheme}
        await self.app(scope, receive, send)


def proxy_fix(app: Any, mode: Literal["legacy", "modern"] = "legacy", trusted_hops: int = 1) -> Any:
    """Trust ``trusted_hops`` proxies' X-Forwarded-For/-Proto/-Host
    (``legacy``) or Forwarded (``modern``) headers, WebSockets included."""
    return ProxyFixMiddleware(_WebsocketScheme(app), mode=mode, trusted_hops=trusted_hops)
