"""The counter on quart-flet: ``hypercorn -k uvloop bench.apps.ours_counter:app``."""

from bench.apps import gclog, memtrace  # noqa: F401  # BENCH_GCLOG, BENCH_TRACEMALLOC
from bench.apps.counter import main
from quart_flet import quart_app

app = quart_app(main)
