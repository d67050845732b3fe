"""The fan-out chat, the official way: ``uvicorn bench.apps.official_chat:sync_control_app``
(``<handler>_<update>_app``, see bench.apps.chat; ``sync_app``/``async_app``
are the ``append`` chat)."""

import flet_web.fastapi as flet_fastapi

from bench.apps import gclog  # noqa: F401  # BENCH_GCLOG
from bench.apps.chat import HANDLERS, UPDATES, main_for

for _handler in HANDLERS:
    for _update in UPDATES:
        globals()[f"{_handler}_{_update}_app"] = flet_fastapi.app(
            main_for(_handler, _update), no_cdn=True
        )
sync_app = globals()["sync_append_app"]
async_app = globals()["async_append_app"]
