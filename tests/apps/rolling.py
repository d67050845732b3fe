"""A counter whose count survives a rolling restart: it lives in
``page.session.store``, ``on_session_save`` keeps it when the server stops,
and the browser's next session (on whichever server takes it) starts from
it. Like tests.apps.sticky, the page shows ``pid:<pid>`` and the log says
"session <id> disconnected".

Run: FLET_STICKY_COOKIE=flet_client FLET_DRAIN_SECONDS=2 \
    hypercorn --workers 0 tests.apps.rolling:app
"""

from __future__ import annotations

import logging
import os
from typing import Any

import flet as ft

from quart_flet import quart_app

logger = logging.getLogger("quart_flet.tests.rolling")


async def main(page: ft.Page) -> None:
    store = page.session.store
    counter = ft.Text(str(store.get("count") or 0), size=40, key="counter")

    async def increment(e: ft.Event[ft.FloatingActionButton]) -> None:
        store.set("count", (store.get("count") or 0) + 1)
        counter.value = str(store.get("count"))
        counter.update()

    def on_disconnect(e: ft.Event[ft.Page]) -> None:
        logger.info("session %s disconnected", page.session.id)

    page.on_disconnect = on_disconnect
    page.floating_action_button = ft.FloatingActionButton(icon=ft.Icons.ADD, on_click=increment)
    page.add(ft.Text("Counter:"), counter, ft.Text(f"pid:{os.getpid()}", key="pid"))


def save(page: ft.Page) -> dict[str, Any]:
    return {"count": page.session.store.get("count") or 0}


app = quart_app(main, on_session_save=save)
