"""The counter whose count survives a restart (on_session_save), for
bench.rolling_restart: the count lives in ``page.session.store``; with
BENCH_SAVE=0 the hook is off and a restart loses it.

Run: hypercorn -k uvloop --workers 0 bench.apps.saved_counter:app
"""

from __future__ import annotations

import os
from typing import Any

import flet as ft

from quart_flet import quart_app


async def main(page: ft.Page) -> None:
    store = page.session.store
    counter = ft.Text(str(store.get("count") or 0), size=40, key="counter")

    async def increment(e: ft.Event[ft.FloatingActionButton]) -> None:
        store.set("count", (store.get("count") or 0) + 1)
        counter.value = str(store.get("count"))
        counter.update()

    page.floating_action_button = ft.FloatingActionButton(
        icon=ft.Icons.ADD, on_click=increment, tooltip="Increment"
    )
    page.add(ft.Text("Counter:"), counter)


def save(page: ft.Page) -> dict[str, Any]:
    return {"count": page.session.store.get("count") or 0}


app = quart_app(main, on_session_save=save if os.environ.get("BENCH_SAVE", "1") == "1" else None)
