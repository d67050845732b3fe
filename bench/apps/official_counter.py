"""The counter, the official way: ``uvicorn bench.apps.official_counter:app``."""

import flet_web.fastapi as flet_fastapi

from bench.apps import memtrace  # noqa: F401  # tracemalloc when BENCH_TRACEMALLOC is set
from bench.apps.counter import main

app = flet_fastapi.app(main, no_cdn=True)
