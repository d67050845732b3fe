"""The counter on the official integration (uvicorn + flet_web.fastapi), for
benchmarks: uvicorn bench.official_counter:app"""

import flet_web.fastapi as flet_fastapi

from examples.counter import main

app = flet_fastapi.app(main, no_cdn=True)
