"""Host Flet web apps inside Quart, served by Hypercorn.

>>> from quart import Quart
>>> from quart_flet import flet_blueprint
>>> app = Quart(__name__)
>>> app.register_blueprint(flet_blueprint(main), url_prefix="/flet-app")
"""

from importlib.metadata import PackageNotFoundError, version

from quart_flet.app.blueprint import flet_app, flet_blueprint, quart_app
from quart_flet.app.extension import QuartFlet
from quart_flet.app.fletapp import FletApp
from quart_flet.app.server import run
from quart_flet.asgi.proxy import proxy_fix
from quart_flet.mount import FletRoutes, SessionEndReason
from quart_flet.options import FletOptions, FletOptionsArgs, OptionError, resolve_options
from quart_flet.runtime.pubsub import Publication, PubSubNotPublished, pubsub_hub
from quart_flet.session.handshake import Handshake, handshake

try:
    __version__ = version("quart-flet")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "__version__",
    "FletApp",
    "FletOptions",
    "FletOptionsArgs",
    "FletRoutes",
    "Handshake",
    "OptionError",
    "Publication",
    "PubSubNotPublished",
    "QuartFlet",
    "SessionEndReason",
    "flet_app",
    "flet_blueprint",
    "handshake",
    "proxy_fix",
    "pubsub_hub",
    "quart_app",
    "resolve_options",
    "run",
]
