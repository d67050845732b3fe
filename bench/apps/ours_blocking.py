"""The blocking-handler app on quart-flet (Hypercorn)."""

from bench.apps.counter import blocking_main
from quart_flet import flet_app

app = flet_app(blocking_main)
