"""The counter on quart-flet: ``hypercorn -k uvloop bench.apps.ours_counter:app``."""

from bench.apps import memtrace  # noqa: F401  # tracemalloc when BENCH_TRACEMALLOC is set
from bench.apps.counter import main
from quart_flet import flet_app

app = flet_app(main)
