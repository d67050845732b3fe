"""The counter, the official way: ``uvicorn bench.apps.official_counter:app``."""

import flet_web.fastapi as flet_fastapi

from bench.apps import gclog, memtrace  # noqa: F401  # BENCH_GCLOG, BENCH_TRACEMALLOC
from bench.apps.counter import main

app = flet_fastapi.app(main, no_cdn=True)
