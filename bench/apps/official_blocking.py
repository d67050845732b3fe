"""The blocking-handler app, the official way (uvicorn)."""

import flet_web.fastapi as flet_fastapi

from bench.apps.counter import blocking_main

app = flet_fastapi.app(blocking_main, no_cdn=True)
