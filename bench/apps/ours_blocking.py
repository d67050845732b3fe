"""The blocking-handler app on quart-flet (Hypercorn)."""

from bench.apps.counter import blocking_main
from quart_flet import quart_app

app = quart_app(blocking_main)
