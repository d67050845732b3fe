"""The fan-out chat on quart-flet: ``hypercorn -k uvloop bench.apps.ours_chat:sync_control_app``
(``<handler>_<update>_app``, see bench.apps.chat; ``sync_app``/``async_app``
are the ``append`` chat); with FLET_REDIS_URL set, pubsub crosses processes."""

from bench.apps import fanout_trace, gclog  # noqa: F401  # BENCH_FANOUT_TRACE, BENCH_GCLOG
from bench.apps.chat import HANDLERS, UPDATES, main_for
from quart_flet import quart_app

for _handler in HANDLERS:
    for _update in UPDATES:
        globals()[f"{_handler}_{_update}_app"] = quart_app(main_for(_handler, _update))
sync_app = globals()["sync_append_app"]
async_app = globals()["async_append_app"]
