"""The counter under a url_prefix, behind a proxy: quart_flet.asgi.proxy.proxy_fix
(Hypercorn's ProxyFixMiddleware, WebSocket-safe) trusts one hop of
X-Forwarded-For/-Proto/-Host.

Run: hypercorn tests.apps.behind_proxy:app --root-path /sub
"""

from __future__ import annotations

from quart import Quart

from examples.counter import main
from quart_flet import flet_blueprint
from quart_flet.asgi.proxy import proxy_fix

quart_app = Quart(__name__)
quart_app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
app = proxy_fix(quart_app, mode="legacy", trusted_hops=1)
