"""The soak app on quart-flet: ``hypercorn -k uvloop bench.apps.ours_soak:app``
(FLET_UPLOAD_DIR and FLET_SECRET_KEY set by bench/soak.py)."""

from typing import Any

from bench.apps.soak import SESSION_TIMEOUT, main, stats
from quart_flet import quart_app

app = quart_app(main, session_timeout_seconds=SESSION_TIMEOUT)


@app.route("/soak-stats")
async def soak_stats() -> dict[str, Any]:
    return stats()
