"""The sticky counter (its page shows the worker's pid) for ``quart-flet run
--workers N``: quart-flet's log on stderr (``quart-flet run`` takes no log
config), and a ``POST /_exit`` that makes the worker taking it die at once,
as a crash or the out-of-memory killer would; metrics at /metrics.

Run: quart-flet run tests.apps.supervised:app --workers 2
"""

from __future__ import annotations

import logging
import os

from quart_flet import quart_app
from tests.apps.sticky import main

handler = logging.StreamHandler()
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
logging.getLogger("quart_flet").addHandler(handler)
logging.getLogger("quart_flet").setLevel(logging.INFO)

app = quart_app(main, metrics_path="/metrics")


@app.post("/_exit")
async def exit_now() -> None:
    os._exit(3)
