"""Hypercorn's ProxyFixMiddleware, made safe for WebSockets.

``ProxyFixMiddleware`` copies X-Forwarded-Proto (``https``, as nginx's
``$scheme`` sends for a wss:// request too) into the scope's scheme, even for
a WebSocket; Quart then takes the WebSocket for an HTTP request and routes
it to the wrong view (a 500). ``proxy_fix`` maps it back to ``wss``/``ws``.

>>> app = proxy_fix(flet_app(main))  # hypercorn module:app behind nginx
"""

from __future__ import annotations

from typing import Any, Literal

from hypercorn.middleware import ProxyFixMiddleware

_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss"}


class _WebsocketScheme:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope.get("scheme") in _WEBSOCKET_SCHEMES:
            scope = {**scope, "scheme": _WEBSOCKET_SCHEMES[scope["scheme"]]}
        await self.app(scope, receive, send)


def proxy_fix(app: Any, mode: Literal["legacy", "modern"] = "legacy", trusted_hops: int = 1) -> Any:
    """Trust ``trusted_hops`` proxies' X-Forwarded-For/-Proto/-Host
    (``legacy``) or Forwarded (``modern``) headers, WebSockets included."""
    return ProxyFixMiddleware(_WebsocketScheme(app), mode=mode, trusted_hops=trusted_hops)
